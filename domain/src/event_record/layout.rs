//! Which layouts of the record this build reads and writes (the `v` of the JSON).

/// The version of the record's layout this build writes.
pub const SCHEMA_VERSION: u32 = 2;

/// The oldest layout this build still reads (and can be told to write).
pub const OLDEST_SCHEMA_VERSION: u32 = 1;

/// A layout this build can write: [`OLDEST_SCHEMA_VERSION`] to [`SCHEMA_VERSION`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteLayout(u32);

impl WriteLayout {
    /// This build's own layout.
    pub const CURRENT: Self = Self(SCHEMA_VERSION);

    pub fn get(self) -> u32 {
        self.0
    }
}

impl std::str::FromStr for WriteLayout {
    type Err = crate::ParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().parse::<u32>() {
            Ok(version) if (OLDEST_SCHEMA_VERSION..=SCHEMA_VERSION).contains(&version) => {
                Ok(Self(version))
            }
            _ => Err(crate::ParseError::new(format!(
                "the record layout must be {OLDEST_SCHEMA_VERSION} to {SCHEMA_VERSION}, not {text:?}"
            ))),
        }
    }
}
