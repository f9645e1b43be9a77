//! The URL policy every catalog and artifact URL (and every redirect hop) must pass.
//!
//! An allow-list entry `host` admits that host on any port; `host:port` admits only that port.
//! (The reference service compares the URL's `host[:port]` text with the entries exactly, so an
//! entry `models.svc` does not admit `http://models.svc:8080/...`.)

use std::fmt;

use url::Url;

#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    host: String,
    port: Option<u16>,
}

/// The parsed `REGISTRY_ALLOWED_HOSTS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowList {
    hosts: Vec<AllowedHost>,
}

impl AllowList {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut hosts = Vec::new();
        for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            hosts.push(parse_allowed_host(item)?);
        }
        if hosts.is_empty() {
            return Err("names no host".into());
        }
        Ok(Self { hosts })
    }

    fn admits(&self, host: &str, port: Option<u16>) -> bool {
        self.hosts
            .iter()
            .any(|allowed| allowed.host.eq_ignore_ascii_case(host) && allowed.port.is_none_or(|p| Some(p) == port))
    }

    pub fn describe(&self) -> String {
        self.hosts
            .iter()
            .map(|h| match h.port {
                Some(p) => format!("{}:{p}", h.host),
                None => h.host.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn parse_allowed_host(item: &str) -> Result<AllowedHost, String> {
    if item.contains("://") || item.contains('/') {
        return Err(format!("entry {item:?} must be a host or host:port, not a URL"));
    }
    // Bracketed IPv6 literal, optionally with a port.
    if let Some(rest) = item.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("entry {item:?} has an unclosed '['"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(parse_port(item, p)?),
            None if after.is_empty() => None,
            None => return Err(format!("entry {item:?} is not host or host:port")),
        };
        return Ok(AllowedHost {
            host: format!("[{host}]"),
            port,
        });
    }
    match item.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => Ok(AllowedHost {
            host: host.to_ascii_lowercase(),
            port: Some(parse_port(item, port)?),
        }),
        Some(_) => Err(format!("entry {item:?} has no host")),
        None => Ok(AllowedHost {
            host: item.to_ascii_lowercase(),
            port: None,
        }),
    }
}

fn parse_port(item: &str, port: &str) -> Result<u16, String> {
    port.parse::<u16>()
        .map_err(|_| format!("entry {item:?} has an invalid port {port:?}"))
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    #[error("{url} is not a valid absolute URL")]
    Malformed { url: String },
    #[error("{url} uses scheme {scheme:?}; only https is allowed (REGISTRY_REQUIRE_HTTPS=true)")]
    HttpsRequired { url: String, scheme: String },
    #[error("{url} uses scheme {scheme:?}; only http and https are allowed")]
    SchemeNotAllowed { url: String, scheme: String },
    #[error("{url}: host {host} is not in REGISTRY_ALLOWED_HOSTS ({allowed})")]
    HostNotAllowed { url: String, host: String, allowed: String },
    #[error("{url} carries credentials; put them elsewhere")]
    Credentials { url: String },
}

/// Host allow-list plus the HTTPS rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlPolicy {
    allow_list: AllowList,
    require_https: bool,
}

impl UrlPolicy {
    pub fn new(allow_list: AllowList, require_https: bool) -> Self {
        Self {
            allow_list,
            require_https,
        }
    }

    pub fn require_https(&self) -> bool {
        self.require_https
    }

    pub fn check_str(&self, raw: &str) -> Result<Url, PolicyViolation> {
        let url = Url::parse(raw).map_err(|_| PolicyViolation::Malformed { url: raw.to_string() })?;
        self.check(&url)?;
        Ok(url)
    }

    pub fn check(&self, url: &Url) -> Result<(), PolicyViolation> {
        let scheme = url.scheme();
        match scheme {
            "https" => {}
            "http" if self.require_https => {
                return Err(PolicyViolation::HttpsRequired {
                    url: url.to_string(),
                    scheme: scheme.into(),
                });
            }
            "http" => {}
            _ => {
                return Err(PolicyViolation::SchemeNotAllowed {
                    url: url.to_string(),
                    scheme: scheme.into(),
                });
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(PolicyViolation::Credentials { url: redact(url) });
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
            None => {
                return Err(PolicyViolation::Malformed { url: url.to_string() });
            }
        };
        // `port()` is None when the URL names the scheme's default port; an allow-list entry
        // `host:443` should still admit `https://host/`, so compare with the effective port.
        if !self.allow_list.admits(&host, url.port_or_known_default()) {
            return Err(PolicyViolation::HostNotAllowed {
                url: url.to_string(),
                host,
                allowed: self.allow_list.describe(),
            });
        }
        Ok(())
    }
}

fn redact(url: &Url) -> String {
    let mut copy = url.clone();
    let _ = copy.set_username("");
    let _ = copy.set_password(None);
    copy.to_string()
}

impl fmt::Display for UrlPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "allowed hosts [{}], https {}",
            self.allow_list.describe(),
            if self.require_https { "required" } else { "optional" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &str, https: bool) -> UrlPolicy {
        UrlPolicy::new(AllowList::parse(hosts).unwrap(), https)
    }

    #[test]
    fn bare_host_admits_any_port() {
        let p = policy("models.example.org", true);
        assert!(p.check_str("https://models.example.org/a.json").is_ok());
        assert!(p.check_str("https://models.example.org:8443/a.json").is_ok());
    }

    #[test]
    fn host_with_port_admits_only_that_port() {
        let p = policy("127.0.0.1:8080", false);
        assert!(p.check_str("http://127.0.0.1:8080/a").is_ok());
        assert!(matches!(
            p.check_str("http://127.0.0.1:8081/a"),
            Err(PolicyViolation::HostNotAllowed { .. })
        ));
        assert!(matches!(
            p.check_str("http://127.0.0.1/a"),
            Err(PolicyViolation::HostNotAllowed { .. })
        ));
    }

    #[test]
    fn default_port_matches_explicit_entry() {
        let p = policy("example.org:443", true);
        assert!(p.check_str("https://example.org/x").is_ok());
    }

    #[test]
    fn https_rule_and_schemes() {
        let p = policy("example.org", true);
        assert!(matches!(
            p.check_str("http://example.org/x"),
            Err(PolicyViolation::HttpsRequired { .. })
        ));
        assert!(matches!(
            p.check_str("file:///etc/passwd"),
            Err(PolicyViolation::SchemeNotAllowed { .. })
        ));
        assert!(policy("example.org", false).check_str("http://example.org/x").is_ok());
    }

    #[test]
    fn lookalike_hosts_are_refused() {
        let p = policy("example.org", true);
        for url in [
            "https://example.org.evil.net/x",
            "https://evil.net/example.org",
            "https://evilexample.org/x",
            "https://example.org@evil.net/x",
        ] {
            assert!(p.check_str(url).is_err(), "{url} should be refused");
        }
    }

    #[test]
    fn credentials_are_refused_and_redacted() {
        let p = policy("example.org", true);
        let err = p.check_str("https://user:secret@example.org/x").unwrap_err();
        assert!(!err.to_string().contains("secret"));
    }

    #[test]
    fn ipv6_entries() {
        let p = policy("[::1]:9000", false);
        assert!(p.check_str("http://[::1]:9000/x").is_ok());
        assert!(p.check_str("http://[::1]:9001/x").is_err());
    }

    #[test]
    fn bad_allow_list_entries_are_rejected() {
        assert!(AllowList::parse("").is_err());
        assert!(AllowList::parse("https://example.org").is_err());
        assert!(AllowList::parse("example.org:http").is_err());
    }
}
