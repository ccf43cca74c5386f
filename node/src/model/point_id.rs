//! Point ids: an unsigned integer or a UUID, exactly as Qdrant's `ExtendedPointId`.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// A point id. Integers sort before UUIDs (Qdrant's order), which is also the order of their
/// storage keys, so scrolling by id is a plain ordered iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PointId {
    Num(u64),
    Uuid(Uuid),
}

impl PointId {
    /// Storage key: a tag byte then big-endian bytes, so byte order equals id order.
    pub fn to_key(&self) -> Vec<u8> {
        match self {
            PointId::Num(n) => {
                let mut k = Vec::with_capacity(9);
                k.push(0u8);
                k.extend_from_slice(&n.to_be_bytes());
                k
            }
            PointId::Uuid(u) => {
                let mut k = Vec::with_capacity(17);
                k.push(1u8);
                k.extend_from_slice(u.as_bytes());
                k
            }
        }
    }

    pub fn from_key(key: &[u8]) -> Option<PointId> {
        match (key.first(), key.len()) {
            (Some(0), 9) => Some(PointId::Num(u64::from_be_bytes(key[1..9].try_into().ok()?))),
            (Some(1), 17) => Some(PointId::Uuid(Uuid::from_slice(&key[1..17]).ok()?)),
            _ => None,
        }
    }
}

impl fmt::Display for PointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PointId::Num(n) => write!(f, "{n}"),
            PointId::Uuid(u) => write!(f, "{}", u.hyphenated()),
        }
    }
}

impl From<u64> for PointId {
    fn from(n: u64) -> Self {
        PointId::Num(n)
    }
}

impl From<Uuid> for PointId {
    fn from(u: Uuid) -> Self {
        PointId::Uuid(u)
    }
}

/// Parses the textual form used in URL paths: a decimal integer or a UUID.
impl FromStr for PointId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(n) = s.parse::<u64>() {
            return Ok(PointId::Num(n));
        }
        Uuid::parse_str(s)
            .map(PointId::Uuid)
            .map_err(|_| format!("Unable to parse point id `{s}`: expected an unsigned integer or a UUID"))
    }
}

impl Serialize for PointId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PointId::Num(n) => s.serialize_u64(*n),
            PointId::Uuid(u) => s.serialize_str(&u.hyphenated().to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for PointId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl Visitor<'_> for IdVisitor {
            type Value = PointId;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an unsigned integer or a UUID string")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PointId, E> {
                Ok(PointId::Num(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PointId, E> {
                u64::try_from(v)
                    .map(PointId::Num)
                    .map_err(|_| E::custom(format!("point id must be non-negative, got {v}")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<PointId, E> {
                Err(E::custom(format!(
                    "point id must be an unsigned integer or a UUID, got {v}"
                )))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PointId, E> {
                Uuid::parse_str(v)
                    .map(PointId::Uuid)
                    .map_err(|_| E::custom(format!("point id `{v}` is not a valid UUID")))
            }
        }
        d.deserialize_any(IdVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_normalises_uuids() {
        let id: PointId = serde_json::from_str("\"A1A2A3A4-B1B2-C1C2-D1D2-D3D4D5D6D7D8\"").unwrap();
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"a1a2a3a4-b1b2-c1c2-d1d2-d3d4d5d6d7d8\""
        );
        let id: PointId = serde_json::from_str("42").unwrap();
        assert_eq!(id, PointId::Num(42));
        assert!(serde_json::from_str::<PointId>("-1").is_err());
        assert!(serde_json::from_str::<PointId>("1.5").is_err());
        assert!(serde_json::from_str::<PointId>("\"abc\"").is_err());
    }

    #[test]
    fn key_order_matches_id_order() {
        let ids = [
            PointId::Num(0),
            PointId::Num(255),
            PointId::Num(256),
            PointId::Num(u64::MAX),
            PointId::Uuid(Uuid::nil()),
            PointId::Uuid(Uuid::max()),
        ];
        for w in ids.windows(2) {
            assert!(w[0] < w[1]);
            assert!(w[0].to_key() < w[1].to_key());
        }
        for id in ids {
            assert_eq!(PointId::from_key(&id.to_key()), Some(id));
        }
    }

    #[test]
    fn parses_path_form() {
        assert_eq!("7".parse::<PointId>().unwrap(), PointId::Num(7));
        assert!("x7".parse::<PointId>().is_err());
    }
}
