//! The first-steps checklist on the home page (License keys), filled in from
//! what really happened — a key, a registration, its CNAME found correct by the
//! monitor, a first TXT update — never from what the user clicked. It goes
//! away once every step is done.

use certdns_core::{AccountId, LicenseKey};

use crate::state::AppState;
use certdns_store::StoreError;

pub(super) struct Step {
    pub title: &'static str,
    pub done: bool,
    /// What to do next (shown on the first step not done).
    pub hint: &'static str,
    pub link: Option<(&'static str, &'static str)>,
}

pub(super) struct Checklist {
    pub steps: Vec<Step>,
    /// The index of the first step not done.
    pub current: usize,
}

/// The checklist of `account`, or `None` once every step is done.
pub(super) async fn checklist(state: &AppState, account: AccountId) -> Result<Option<Checklist>, StoreError> {
    let (keys, regs, statuses) = tokio::try_join!(
        state.core.list_license_keys(account),
        state.core.list_registrations(account),
        state.store.delegation_statuses(account)
    )?;
    let has_key = keys.iter().any(LicenseKey::is_active);
    let steps = vec![
        Step {
            title: "Create a license key",
            done: has_key,
            hint: "Create one below; it gives you the base URL your ACME client uses.",
            link: None,
        },
        Step {
            title: "Register a domain",
            done: !regs.is_empty(),
            hint: "Run your ACME client with the key's base URL (it registers on its first run), or add the domain here.",
            link: Some(("/registrations/new", "Add a domain")),
        },
        Step {
            title: "Create its CNAME",
            done: statuses.iter().any(|s| s.status == "correct"),
            hint: "Create the CNAME the registration shows in your DNS zone; we check it within minutes.",
            link: Some(("/registrations", "See the CNAME to create")),
        },
        Step {
            title: "Get a certificate",
            done: regs.iter().any(|r| r.last_update_at.is_some()),
            hint: "Run your ACME client: its first TXT update here means the CA could validate through us.",
            link: Some(("/audit", "Watch the audit log")),
        },
    ];
    let current = steps.iter().position(|s| !s.done);
    Ok(current.map(|current| Checklist { steps, current }))
}
