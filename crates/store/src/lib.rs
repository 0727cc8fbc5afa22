//! Tenant storage.
