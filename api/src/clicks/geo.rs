//! Country (and city, where the database has it) of an IP, from a MaxMind-format database.
//! Reads both layouts in use: MaxMind's and DB-IP's (`country.iso_code`,
//! `city.names.en`) and ip-location-db's flat one (`country_code`, `city`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use anyhow::Context;
use serde::Deserialize;

/// Where an IP is, as far as the database knows (empty strings: unknown).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    pub country: String,
    pub city: String,
}

pub struct GeoDatabase {
    reader: maxminddb::Reader<Vec<u8>>,
}

#[derive(Deserialize)]
struct Location<'a> {
    #[serde(default, borrow)]
    country_code: Option<&'a str>,
    #[serde(default, borrow)]
    country: Option<Country<'a>>,
    #[serde(default, borrow)]
    city: Option<City<'a>>,
}

#[derive(Deserialize)]
struct Country<'a> {
    #[serde(default, borrow)]
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum City<'a> {
    Name(&'a str),
    Names {
        #[serde(borrow)]
        names: BTreeMap<&'a str, &'a str>,
    },
}

impl GeoDatabase {
    pub fn open(path: &str) -> anyhow::Result<Self> {
        let reader = maxminddb::Reader::open_readfile(path).with_context(|| {
            format!("GEOIP_DATABASE {path:?} is not a readable MaxMind database")
        })?;
        tracing::info!(path, database = %reader.metadata().database_type, "geo database loaded");
        Ok(Self { reader })
    }

    pub fn from_bytes(bytes: Vec<u8>) -> anyhow::Result<Self> {
        Ok(Self {
            reader: maxminddb::Reader::from_source(bytes)?,
        })
    }

    pub fn locate(&self, ip: IpAddr) -> Place {
        let found = self
            .reader
            .lookup(ip)
            .and_then(|result| result.decode::<Location<'_>>());
        let Ok(Some(location)) = found else {
            return Place::default();
        };
        let country = location
            .country_code
            .or(location.country.and_then(|c| c.iso_code))
            .filter(|code| code.len() == 2 && code.bytes().all(|b| b.is_ascii_alphabetic()))
            .map(str::to_ascii_uppercase)
            .unwrap_or_default();
        let city = match location.city {
            Some(City::Name(name)) => name.to_owned(),
            Some(City::Names { names }) => names.get("en").copied().unwrap_or_default().to_owned(),
            None => String::new(),
        };
        Place { country, city }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    #[derive(Serialize)]
    struct Flat {
        country_code: &'static str,
    }

    #[derive(Serialize)]
    struct MaxMindStyle {
        country: BTreeMap<&'static str, &'static str>,
        city: BTreeMap<&'static str, BTreeMap<&'static str, &'static str>>,
    }

    #[test]
    fn reads_both_layouts_and_misses_quietly() {
        let mut writer = mmdb_writer::Writer::new("LinkTrace-Test");
        writer
            .insert(
                "198.51.100.0/24".parse::<ipnet::IpNet>().unwrap(),
                &Flat { country_code: "de" },
            )
            .unwrap();
        writer
            .insert(
                "203.0.113.0/24".parse::<ipnet::IpNet>().unwrap(),
                &MaxMindStyle {
                    country: [("iso_code", "JP")].into(),
                    city: [("names", [("en", "Tokyo")].into())].into(),
                },
            )
            .unwrap();
        let geo = GeoDatabase::from_bytes(writer.to_bytes().unwrap()).unwrap();
        assert_eq!(
            geo.locate("198.51.100.9".parse().unwrap()),
            Place {
                country: "DE".into(),
                city: String::new()
            }
        );
        assert_eq!(
            geo.locate("203.0.113.1".parse().unwrap()),
            Place {
                country: "JP".into(),
                city: "Tokyo".into()
            }
        );
        assert_eq!(geo.locate("192.0.2.1".parse().unwrap()), Place::default());
        assert_eq!(geo.locate("2001:db8::1".parse().unwrap()), Place::default());
    }
}
