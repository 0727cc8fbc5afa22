//! The claims tenantd puts in a token, in sqld's shape: `id` names the tenant (sqld's
//! namespace), `a` the access (`rw` or `ro`; absent means `rw`, as in sqld), `exp` and `iat`
//! in Unix seconds. A token without `id` is not accepted: it would grant every tenant.

use serde::{Deserialize, Serialize};

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

fn read_write() -> Access {
    Access::ReadWrite
}

/// The verified content of a token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The tenant the token is for (`id`).
    #[serde(rename = "id")]
    pub tenant: String,
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
            access: Access::ReadOnly,
            exp: Some(10),
            iat: Some(5),
            nbf: None,
        };
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!({"id": "acme", "a": "ro", "exp": 10, "iat": 5})
        );
    }

    #[test]
    fn access_defaults_to_rw_and_rejects_unknown() {
        let c: Claims = serde_json::from_value(json!({"id": "acme"})).unwrap();
        assert_eq!(c.access, Access::ReadWrite);
        assert!(serde_json::from_value::<Claims>(json!({"id": "acme", "a": "roa"})).is_err());
        assert!(
            serde_json::from_value::<Claims>(json!({"a": "rw"})).is_err(),
            "no tenant"
        );
    }
}
