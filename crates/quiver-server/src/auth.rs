//! Who may call what: bearer tokens with roles, and the one table of what each method needs.
//!
//! Tokens are kept only as SHA-256 digests (the config file holds `sha256:`, and a token
//! given on the command line is hashed at start). A presented token is hashed and compared
//! with every configured digest without stopping at the first match, so neither the
//! comparison time nor the token's length tells an attacker anything. Token texts are never
//! logged; the token's *name* is what audit logs and `applied_by` record.
//!
//! | access | methods | needs |
//! |---|---|---|
//! | [`Access::Open`] | health checking, server reflection | nothing |
//! | [`Access::Read`] | online features, registry listings, job status, run statistics, Flight `DoGet` | a `reader` token when `reads_need_token`, else nothing |
//! | [`Access::Upload`] | `GetHistoricalFeatures`, `GetDrift`, `GetSkew`, Flight `DoPut` (offline scans) | `upload_role` (`writer` by default) |
//! | [`Access::Write`] | `Push`, `MaterializeService.Start` | `writer` |
//! | [`Access::Admin`] | `Plan`, `Apply` | `admin` |
//!
//! With no token configured at all, every call is open (and `quiver serve` refuses to listen
//! beyond loopback unless told `--insecure`).

use crate::domain::Error;
use quiver_core::config::{Role, ServerConfig, TokenConfig};
use sha2::{Digest, Sha256};

/// What a method needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Open,
    Read,
    Upload,
    Write,
    Admin,
}

/// Every method the server offers, with its short label (for metrics) and access.
/// A path not listed here reaches no handler (the router answers UNIMPLEMENTED).
const METHODS: &[(&str, &str, Access)] = &[
    ("/quiver.v1.RegistryService/Plan", "RegistryService/Plan", Access::Admin),
    ("/quiver.v1.RegistryService/Apply", "RegistryService/Apply", Access::Admin),
    ("/quiver.v1.RegistryService/ListEntities", "RegistryService/ListEntities", Access::Read),
    ("/quiver.v1.RegistryService/ListSources", "RegistryService/ListSources", Access::Read),
    ("/quiver.v1.RegistryService/ListFeatureViews", "RegistryService/ListFeatureViews", Access::Read),
    ("/quiver.v1.RegistryService/ListFeatureServices", "RegistryService/ListFeatureServices", Access::Read),
    ("/quiver.v1.RegistryService/GetFeatureView", "RegistryService/GetFeatureView", Access::Read),
    ("/quiver.v1.RegistryService/History", "RegistryService/History", Access::Read),
    ("/quiver.v1.OnlineService/GetOnlineFeatures", "OnlineService/GetOnlineFeatures", Access::Read),
    (
        "/quiver.v1.OfflineService/GetHistoricalFeatures",
        "OfflineService/GetHistoricalFeatures",
        Access::Upload,
    ),
    ("/quiver.v1.MaterializeService/Start", "MaterializeService/Start", Access::Write),
    ("/quiver.v1.MaterializeService/Get", "MaterializeService/Get", Access::Read),
    ("/quiver.v1.MaterializeService/List", "MaterializeService/List", Access::Read),
    ("/quiver.v1.PushService/Push", "PushService/Push", Access::Write),
    ("/quiver.v1.QualityService/GetStatistics", "QualityService/GetStatistics", Access::Read),
    ("/quiver.v1.QualityService/GetDrift", "QualityService/GetDrift", Access::Upload),
    ("/quiver.v1.QualityService/GetSkew", "QualityService/GetSkew", Access::Upload),
    ("/arrow.flight.protocol.FlightService/Handshake", "FlightService/Handshake", Access::Read),
    ("/arrow.flight.protocol.FlightService/ListFlights", "FlightService/ListFlights", Access::Read),
    ("/arrow.flight.protocol.FlightService/GetFlightInfo", "FlightService/GetFlightInfo", Access::Read),
    ("/arrow.flight.protocol.FlightService/PollFlightInfo", "FlightService/PollFlightInfo", Access::Read),
    ("/arrow.flight.protocol.FlightService/GetSchema", "FlightService/GetSchema", Access::Read),
    ("/arrow.flight.protocol.FlightService/DoGet", "FlightService/DoGet", Access::Read),
    ("/arrow.flight.protocol.FlightService/DoPut", "FlightService/DoPut", Access::Upload),
    ("/arrow.flight.protocol.FlightService/DoExchange", "FlightService/DoExchange", Access::Upload),
    ("/arrow.flight.protocol.FlightService/DoAction", "FlightService/DoAction", Access::Write),
    ("/arrow.flight.protocol.FlightService/ListActions", "FlightService/ListActions", Access::Read),
    ("/grpc.health.v1.Health/Check", "Health/Check", Access::Open),
    ("/grpc.health.v1.Health/Watch", "Health/Watch", Access::Open),
    ("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "ServerReflection/v1", Access::Open),
    (
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "ServerReflection/v1alpha",
        Access::Open,
    ),
];

/// A known method: its metrics label and what it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Method {
    pub label: &'static str,
    pub access: Access,
}

/// The method at a request path, or `None` for a path no service offers.
pub fn method(path: &str) -> Option<Method> {
    METHODS.iter().find(|(p, _, _)| *p == path).map(|&(_, label, access)| Method { label, access })
}

/// The caller a token proved to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
}

/// The server's tokens and rules.
#[derive(Clone, Debug, Default)]
pub struct Auth {
    tokens: Vec<TokenConfig>,
    reads_need_token: bool,
    upload_role: Option<Role>,
}

/// The name an `--auth-token` (or `server.auth_token`) is known by.
pub const ADMIN_TOKEN_NAME: &str = "admin";

/// The SHA-256 of a token's text.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Auth {
    /// The config's tokens, plus `auth_token` (one admin token given as text) when set.
    pub fn new(server: &ServerConfig, auth_token: Option<&str>) -> Auth {
        let mut tokens = server.tokens.clone();
        if let Some(t) = auth_token.filter(|t| !t.is_empty()) {
            tokens.push(TokenConfig {
                name: ADMIN_TOKEN_NAME.into(),
                role: Role::Admin,
                sha256: token_digest(t),
            });
        }
        Auth { tokens, reads_need_token: server.reads_need_token, upload_role: server.upload_role }
    }

    /// Whether any token is configured (otherwise every call is open).
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    fn required(&self, access: Access) -> Option<Role> {
        match access {
            Access::Open => None,
            Access::Read => self.reads_need_token.then_some(Role::Reader),
            Access::Upload => Some(self.upload_role.unwrap_or(Role::Writer)),
            Access::Write => Some(Role::Writer),
            Access::Admin => Some(Role::Admin),
        }
    }

    /// The principal behind a request's `authorization` header, checked against what the
    /// method needs. `Ok(None)`: no token needed and none (valid) sent.
    pub fn authorize(
        &self,
        method: Option<Method>,
        authorization: Option<&[u8]>,
    ) -> Result<Option<Principal>, Error> {
        if !self.enabled() {
            return Ok(None);
        }
        let needed = method.and_then(|m| self.required(m.access));
        let presented = authorization.map(bearer_token);
        let principal = match presented {
            None => None,
            Some(None) => {
                return Err(Error::NoCredentials("the authorization header is not `Bearer <token>`".into()));
            }
            Some(Some(token)) => match self.find(token) {
                Some(p) => Some(p),
                None => {
                    return Err(Error::NoCredentials(
                        "the bearer token is not one the server accepts".into(),
                    ));
                }
            },
        };
        let (Some(role), Some(method)) = (needed, method) else { return Ok(principal) };
        match &principal {
            None => Err(Error::NoCredentials(format!(
                "{} needs a token with role {role}: send `authorization: Bearer <token>`",
                method.label
            ))),
            Some(p) if p.role < role => Err(Error::Forbidden(format!(
                "{} needs role {role}; token '{}' has role {}",
                method.label, p.name, p.role
            ))),
            Some(_) => Ok(principal),
        }
    }

    /// The token whose digest matches, comparing against every token.
    fn find(&self, token: &[u8]) -> Option<Principal> {
        let digest: [u8; 32] = Sha256::digest(token).into();
        let mut found: Option<&TokenConfig> = None;
        for t in &self.tokens {
            if digests_equal(&digest, &t.sha256) && found.is_none() {
                found = Some(t);
            }
        }
        found.map(|t| Principal { name: t.name.clone(), role: t.role })
    }
}

/// The token of a `Bearer <token>` header (scheme in any case), or `None` when the header
/// is another scheme or empty.
fn bearer_token(header: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = header.split_at(header.iter().position(|b| *b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Compares two digests in time independent of where they differ.
fn digests_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(reads_need_token: bool, upload_role: Option<Role>) -> Auth {
        let server = ServerConfig {
            tokens: vec![
                TokenConfig { name: "reader_a".into(), role: Role::Reader, sha256: token_digest("r-token") },
                TokenConfig { name: "writer_b".into(), role: Role::Writer, sha256: token_digest("w-token") },
            ],
            reads_need_token,
            upload_role,
            ..ServerConfig::default()
        };
        Auth::new(&server, Some("a-token"))
    }

    fn call(a: &Auth, path: &str, header: Option<&str>) -> Result<Option<String>, tonic::Code> {
        a.authorize(method(path), header.map(str::as_bytes))
            .map(|p| p.map(|p| p.name))
            .map_err(|e| crate::error::code(&e))
    }

    const APPLY: &str = "/quiver.v1.RegistryService/Apply";
    const PLAN: &str = "/quiver.v1.RegistryService/Plan";
    const ONLINE: &str = "/quiver.v1.OnlineService/GetOnlineFeatures";
    const DO_PUT: &str = "/arrow.flight.protocol.FlightService/DoPut";
    const PUSH: &str = "/quiver.v1.PushService/Push";

    #[test]
    fn each_role_reaches_what_it_may_and_no_more() {
        use tonic::Code::{PermissionDenied, Unauthenticated};
        let a = auth(false, None);
        assert_eq!(call(&a, ONLINE, None), Ok(None), "reads are open by default");
        assert_eq!(call(&a, ONLINE, Some("Bearer r-token")), Ok(Some("reader_a".into())));
        assert_eq!(call(&a, APPLY, None), Err(Unauthenticated));
        assert_eq!(call(&a, PLAN, None), Err(Unauthenticated), "plan needs the same role as apply");
        assert_eq!(call(&a, PLAN, Some("Bearer w-token")), Err(PermissionDenied));
        assert_eq!(call(&a, APPLY, Some("Bearer a-token")), Ok(Some(ADMIN_TOKEN_NAME.into())));
        assert_eq!(call(&a, PUSH, Some("Bearer r-token")), Err(PermissionDenied));
        assert_eq!(call(&a, PUSH, Some("Bearer w-token")), Ok(Some("writer_b".into())));
        assert_eq!(call(&a, PUSH, Some("Bearer a-token")), Ok(Some("admin".into())), "admin includes writer");
        assert_eq!(call(&a, DO_PUT, Some("Bearer r-token")), Err(PermissionDenied));
        assert_eq!(call(&a, "/grpc.health.v1.Health/Check", None), Ok(None));
        // A wrong token is refused even where none is needed: it is a mistake worth saying.
        assert_eq!(call(&a, ONLINE, Some("Bearer r-token-")), Err(Unauthenticated));
        assert_eq!(call(&a, ONLINE, Some("Basic r-token")), Err(Unauthenticated));
        assert_eq!(call(&a, ONLINE, Some("Bearer ")), Err(Unauthenticated));
    }

    #[test]
    fn reads_and_uploads_follow_the_config() {
        let a = auth(true, Some(Role::Reader));
        assert_eq!(call(&a, ONLINE, None), Err(tonic::Code::Unauthenticated));
        assert_eq!(call(&a, ONLINE, Some("Bearer r-token")), Ok(Some("reader_a".into())));
        assert_eq!(call(&a, DO_PUT, Some("Bearer r-token")), Ok(Some("reader_a".into())));
        assert_eq!(call(&a, "/x.Svc1/M1", None), Ok(None), "unknown paths reach no handler");
    }

    #[test]
    fn the_scheme_is_matched_in_any_case_and_nothing_configured_means_open() {
        let a = auth(false, None);
        for header in ["bearer w-token", "BEARER w-token", "Bearer   w-token  "] {
            assert_eq!(call(&a, PUSH, Some(header)), Ok(Some("writer_b".into())), "{header}");
        }
        let open = Auth::new(&ServerConfig::default(), Some(""));
        assert!(!open.enabled());
        assert_eq!(call(&open, APPLY, None), Ok(None));
    }

    #[test]
    fn every_listed_method_has_a_unique_path_and_label() {
        let mut paths: Vec<_> = METHODS.iter().map(|m| m.0).collect();
        let mut labels: Vec<_> = METHODS.iter().map(|m| m.1).collect();
        paths.sort_unstable();
        paths.dedup();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(paths.len(), METHODS.len());
        assert_eq!(labels.len(), METHODS.len());
        assert!(digests_equal(&token_digest("x"), &token_digest("x")));
        assert!(!digests_equal(&token_digest("x"), &token_digest("y")));
    }
}
