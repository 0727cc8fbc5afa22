//! The claims tenantd puts in a token, in sqld's shape: `id` names the tenant (sqld's
//! namespace), `a` the access (`rw` or `ro`; absent means `rw`, as in sqld), `exp` and `iat`
//! in Unix seconds. A token without `id` is not accepted: it would grant every tenant.
//! tenantd adds `epoch`: the token epoch of the tenant file the token was issued for, so a
//! token dies with its tenant (delete + re-create) and when the tenant's tokens are revoked.

use serde::{Deserialize, Serialize};

use crate::jwt::AuthError;

/// What a token may do on its tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Access {
    /// Read and write (`"rw"`).
    #[serde(rename = "rw")]
    ReadWrite,
    /// Read only (`"ro"`): the server runs the tenant's SQL with writes disabled.
    #[serde(rename = "ro")]
    ReadOnly,
}

impl Access {
    /// True for [`Access::ReadOnly`].
    pub fn is_read_only(self) -> bool {
        self == Access::ReadOnly
    }
}

impl Claims {
    /// Checks the token's epoch against the tenant's `current` one. Errors:
    /// [`AuthError::Unbound`] (no epoch claim), [`AuthError::Revoked`] (another epoch).
    pub fn check_epoch(&self, current: &str) -> Result<(), AuthError> {
        match self.epoch.as_deref() {
            None => Err(AuthError::Unbound),
            // Not secret (a token must still be signed), so a plain comparison is fine.
            Some(e) if e == current => Ok(()),
            Some(_) => Err(AuthError::Revoked),
        }
    }
}

fn read_write() -> Access {
    Access::ReadWrite
}

/// The verified content of a token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The tenant the token is for (`id`).
    #[serde(rename = "id")]
    pub tenant: String,
    /// The tenant's token epoch when the token was issued (`epoch`); the server refuses a token
    /// without one, or with one that is no longer the tenant's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
    /// Its access level (`a`).
    #[serde(rename = "a", default = "read_write")]
    pub access: Access,
    /// Expiry, Unix seconds (`exp`); none means the token does not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// Issue time, Unix seconds (`iat`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Not valid before, Unix seconds (`nbf`); we never set it but honour it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sqld_shape() {
        let c = Claims {
            tenant: "acme".into(),
            epoch: Some("e1".into()),
            access: Access::ReadOnly,
            exp: Some(10),
            iat: Some(5),
            nbf: None,
        };
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!({"id": "acme", "epoch": "e1", "a": "ro", "exp": 10, "iat": 5})
        );
    }

    #[test]
    fn access_defaults_to_rw_and_rejects_unknown() {
        let c: Claims = serde_json::from_value(json!({"id": "acme"})).unwrap();
        assert_eq!((c.access, c.epoch), (Access::ReadWrite, None));
        assert!(serde_json::from_value::<Claims>(json!({"id": "acme", "a": "roa"})).is_err());
        assert!(
            serde_json::from_value::<Claims>(json!({"a": "rw"})).is_err(),
            "no tenant"
        );
    }
}
