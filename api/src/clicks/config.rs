use envconfig::Envconfig;

/// How the redirect treats clicks.
#[derive(Envconfig, Clone, Debug)]
pub struct ClickConfig {
    /// Proxies whose `X-Forwarded-For` is believed: comma-separated addresses or CIDR
    /// ranges (the gateway in front of the api). Empty: the TCP peer is the client.
    #[envconfig(from = "TRUSTED_PROXIES", default = "")]
    pub trusted_proxies: String,
    /// An IP → country (and city) database in MaxMind's format; empty: no geo facts.
    /// `deploy/up.sh` installs one from the npm registry; it is never downloaded at run time.
    #[envconfig(from = "GEOIP_DATABASE", default = "")]
    pub geoip_database: String,
    /// How long after a visitor's counted click on a link its further clicks there are
    /// repeats (stored, counted once by default); 0: every click counts.
    #[envconfig(from = "CLICK_REPEAT_WINDOW_SECS", default = "3600")]
    pub repeat_window_secs: u64,
    /// What is stored of a click's IP: `keep`, `truncate` (IPv4 /24, IPv6 /48) or `drop`.
    #[envconfig(from = "CLICK_IP_ANONYMISATION", default = "keep")]
    pub ip_anonymisation: String,
}
