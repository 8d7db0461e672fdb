//! What every handler shares.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use certdns_core::{AccountId, AccountRole, AuditKind, CredentialSealer, KeyId, NewAuditEvent};
use certdns_http::{ClientAddrRule, SlowWork};
use certdns_store::Store;
use certdns_sync::TxtSync;
use tokio::sync::OnceCell;

use crate::ApiDeps;
use crate::auth::KeyCache;
use crate::config::ApiConfig;
use crate::limits::Limits;
use crate::signals::{self, AlertSignals};
use crate::update_batch::UpdateBatcher;
use crate::usage::{self, UsageRecorder};

/// `last_used_at` is written at most this often per key.
const TOUCH_EVERY: Duration = Duration::from_secs(60);
/// Bound on the in-memory memo of (key, address) pairs already recorded.
const SEEN_MAX: usize = 100_000;

pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: ApiConfig,
    pub zone_domain: String,
    pub client_addr: ClientAddrRule,
    pub limits: Limits,
    pub keys: KeyCache,
    /// What alerting learns from requests (see `signals`).
    pub signals: Arc<AlertSignals>,
    touched: Mutex<HashMap<KeyId, Instant>>,
    seen_addresses: Mutex<HashSet<(KeyId, IpAddr)>>,
    open_owner: OnceCell<AccountId>,
    /// Every change to what the DNS answers goes through here.
    pub sync: Arc<TxtSync>,
    /// The `/update` fast path's batching (see `update_batch`).
    pub updates: UpdateBatcher,
    /// Present when usage is recorded (`ApiDeps::usage`).
    pub usage: Option<Arc<UsageRecorder>>,
    /// Seals passwords keys with storage access may read back; `None` when
    /// `api.credentials_key` is unset (storage answers 503).
    pub sealer: Option<CredentialSealer>,
    /// The API's public base URL, given to clients as `server_url`.
    pub public_url: String,
    /// Where a password hash imported from acme-dns (bcrypt) is checked, once.
    pub slow_hashes: SlowWork,
    /// Plans and payment standing; `None` when billing is off.
    pub entitlements: Option<Arc<certdns_billing::Entitlements>>,
    /// The fast path writes a name only below every plan's updates per day.
    pub fast_daily_cap: Option<u64>,
    /// Off when a plan keeps fewer TXT values than `api.txt_values` (the fast
    /// path writes without knowing the plan).
    pub fast_path: bool,
}

impl AppState {
    pub fn new(deps: ApiDeps) -> Self {
        let client_addr = ClientAddrRule::new(deps.config.client_ip_header.as_ref(), &deps.config.trusted_proxies);
        let usage = deps.usage.map(|sink| {
            let recorder = Arc::new(UsageRecorder::default());
            usage::spawn_flusher(Arc::downgrade(&recorder), deps.store.clone(), sink);
            recorder
        });
        let signals = Arc::new(AlertSignals::default());
        signals::spawn_flusher(Arc::downgrade(&signals), deps.store.alerts());
        let wait = std::time::Duration::from_millis(deps.config.propagation_wait_ms);
        let deadline = std::time::Duration::from_secs(deps.config.request_timeout_secs);
        let updates =
            UpdateBatcher::spawn(deps.store.clone(), deps.sync.clone(), deps.config.txt_values, wait, deadline);
        let sealer = deps.config.credentials_key.as_deref().and_then(|k| CredentialSealer::from_secret(k).ok());
        let plans = deps.entitlements.as_deref();
        let fast_path = !plans.is_some_and(|e| e.caps_txt_values_below(deps.config.txt_values));
        if !fast_path {
            tracing::warn!(
                "a plan keeps fewer TXT values per name than api.txt_values: every /update takes the checked path"
            );
        }
        Self {
            fast_daily_cap: plans.and_then(|e| e.fast_path_daily_cap()),
            fast_path,
            sealer,
            public_url: deps.public_url,
            slow_hashes: SlowWork::new(certdns_http::slow_work::default_threads()),
            entitlements: deps.entitlements,
            usage,
            sync: deps.sync,
            updates,
            limits: Limits::new(&deps.config.rate_limits),
            store: deps.store,
            zone_domain: deps.zone_domain,
            client_addr,
            config: deps.config,
            keys: KeyCache::new(signals.clone()),
            signals,
            touched: Mutex::default(),
            seen_addresses: Mutex::default(),
            open_owner: OnceCell::new(),
        }
    }

    pub fn keep(&self) -> usize {
        self.config.txt_values
    }

    /// Appends an audit event; failures are logged, never surfaced to the client.
    pub async fn audit(
        &self,
        account: Option<AccountId>,
        kind: AuditKind,
        ip: Option<IpAddr>,
        detail: serde_json::Value,
    ) {
        let event = NewAuditEvent { account_id: account, kind, client_addr: ip, detail };
        if let Err(e) = self.store.append_audit(&event, certdns_core::now()).await {
            tracing::warn!(error = %e, kind = %kind, "writing an audit event failed");
        }
    }

    /// After a successful license-key authentication: records `last_used_at`
    /// (at most once a minute per key) and audits the first use from a new address.
    /// Runs in the background; none of it may slow down or fail the request.
    pub fn key_used(self: &Arc<Self>, key: &KeyId, account: AccountId, ip: Option<IpAddr>) {
        let touch = {
            let mut touched = self.touched.lock().unwrap_or_else(|p| p.into_inner());
            let due = touched.get(key).is_none_or(|at| at.elapsed() >= TOUCH_EVERY);
            if due {
                if touched.len() >= SEEN_MAX {
                    touched.clear();
                }
                touched.insert(key.clone(), Instant::now());
            }
            due
        };
        let check_address = ip.is_some_and(|ip| {
            let mut seen = self.seen_addresses.lock().unwrap_or_else(|p| p.into_inner());
            if seen.len() >= SEEN_MAX {
                seen.clear();
            }
            seen.insert((key.clone(), ip))
        });
        if !touch && !check_address {
            return;
        }
        let state = self.clone();
        let key = key.clone();
        tokio::spawn(async move {
            let now = certdns_core::now();
            if touch && let Err(e) = state.store.touch_license_key(&key, now).await {
                tracing::warn!(error = %e, key_id = %key, "recording license key use failed");
            }
            if check_address && let Some(ip) = ip {
                match state.store.note_license_key_address(&key, ip, now).await {
                    Ok(true) => {
                        state
                            .audit(
                                Some(account),
                                AuditKind::LicenseKeyNewAddress,
                                Some(ip),
                                serde_json::json!({ "key_id": key.as_str() }),
                            )
                            .await;
                    }
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, key_id = %key, "recording license key address failed"),
                }
            }
        });
    }

    /// Open registration: registrations belong to the first operator account.
    pub async fn open_owner(&self) -> Result<Option<AccountId>, certdns_store::StoreError> {
        if let Some(id) = self.open_owner.get() {
            return Ok(Some(*id));
        }
        let accounts = self.store.list_accounts().await?;
        let Some(owner) = accounts.iter().find(|a| a.role == AccountRole::Operator).map(|a| a.id) else {
            return Ok(None);
        };
        let _ = self.open_owner.set(owner);
        Ok(Some(owner))
    }
}
