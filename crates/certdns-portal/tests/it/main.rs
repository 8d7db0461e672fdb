//! certdns-portal's integration tests, one binary: the handlers over real HTTP
//! on SQLite and on Postgres, a module per resource ([`auth`], [`keys`],
//! [`registrations`], [`domains`], [`add_domain`], [`activity`], [`account_api`]), and the whole
//! portal driven in headless Chromium ([`browser`]).

// A failed unwrap is a failed test here.
#![allow(clippy::unwrap_used)]

mod account_api;
mod account_label;
mod activity;
mod add_domain;
mod alerts;
mod auth;
mod billing_entitlements;
mod billing_pages;
mod billing_webhook;
mod browser;
mod domains;
mod fake_stripe;
mod keys;
mod monitoring;
mod operator;
mod persist;
mod public_pages;
mod registrations;
mod status_page;
mod stripe_events;
mod support;
