//! Tenant access tokens for tenantd: JWTs signed with Ed25519 (`alg: EdDSA`), with sqld's
//! claims (`id` = tenant, `a` = `rw` | `ro`, `exp`, optional `iat`), so tokens look like the
//! ones libSQL clients already carry, plus `epoch`: the tenant file's token epoch, which
//! changes when the tenant is re-created or its tokens are revoked.
//!
//! - [`claims`]: the claims and the access level;
//! - [`jwt`]: compact JWS encoding and verification (EdDSA only);
//! - [`keys`]: the key pair on disk (private key mode 0600, public key beside it), issuing and
//!   verifying tokens.
//!
//! ```
//! use auth::{Access, Keys};
//! use std::time::{Duration, SystemTime};
//! let keys = Keys::generate();
//! let token = keys.issue("acme", "epoch-1", Access::ReadOnly, Some(Duration::from_secs(3600)));
//! let claims = keys.authorize(&token, "acme", SystemTime::now()).unwrap();
//! assert_eq!(claims.access, Access::ReadOnly);
//! assert!(claims.check_epoch("epoch-1").is_ok());
//! assert!(claims.check_epoch("epoch-2").is_err()); // revoked
//! assert!(keys.authorize(&token, "globex", SystemTime::now()).is_err());
//! ```
#![deny(missing_docs)]

pub mod claims;
pub mod jwt;
pub mod keys;

pub use claims::{Access, Claims};
pub use jwt::AuthError;
pub use keys::{KeyError, Keys};
