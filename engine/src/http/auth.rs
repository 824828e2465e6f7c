//! Who may call what: bearer tokens with roles, and the access table that
//! every route must have a row in. A route without a row is denied (deny by
//! default); public routes are the explicit `Access::Public` rows.
//!
//! Tokens are kept only as SHA-256 digests, so a token never sits in memory
//! longer than a request and a stored digest does not reveal it.

use std::collections::HashMap;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::config::{AuthConfig, Role};
use crate::http::AppState;
use crate::http::error::ApiError;

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token.
    Public,
    /// Callers whose role is at least this.
    Role(Role),
}

/// The access table: `(method, route path, access)`. Adding a route means
/// adding its handler and one row here; the tests fail for a route without
/// a row.
pub const ROUTES: &[(&str, &str, Access)] = &[
    ("GET", "/healthz", Access::Public),
    ("GET", "/readyz", Access::Public),
    ("GET", "/api/openapi.json", Access::Public),
    ("GET", "/metrics", Access::Role(Role::Viewer)),
    ("GET", "/api/whoami", Access::Role(Role::Viewer)),
    ("GET", "/api/overview", Access::Role(Role::Viewer)),
    ("GET", "/api/config", Access::Role(Role::Admin)),
    ("GET", "/api/queues", Access::Role(Role::Viewer)),
    ("PUT", "/api/queues/{name}", Access::Role(Role::Admin)),
    ("GET", "/api/queues/{name}", Access::Role(Role::Viewer)),
    ("DELETE", "/api/queues/{name}", Access::Role(Role::Admin)),
    (
        "POST",
        "/api/queues/{name}/messages",
        Access::Role(Role::Operator),
    ),
    (
        "GET",
        "/api/queues/{name}/messages",
        Access::Role(Role::Viewer),
    ),
    (
        "POST",
        "/api/queues/{name}/batch",
        Access::Role(Role::Operator),
    ),
    (
        "POST",
        "/api/queues/{name}/receive",
        Access::Role(Role::Operator),
    ),
    ("POST", "/api/ack", Access::Role(Role::Operator)),
    ("POST", "/api/nack", Access::Role(Role::Operator)),
    ("POST", "/api/reject", Access::Role(Role::Operator)),
    (
        "GET",
        "/api/queues/{name}/dead-letters",
        Access::Role(Role::Viewer),
    ),
    (
        "POST",
        "/api/queues/{name}/dead-letters/retry",
        Access::Role(Role::Operator),
    ),
    (
        "POST",
        "/api/queues/{name}/dead-letters/purge",
        Access::Role(Role::Operator),
    ),
    (
        "POST",
        "/api/queues/{name}/dead-letters/move",
        Access::Role(Role::Operator),
    ),
    ("GET", "/api/stream", Access::Role(Role::Viewer)),
    ("GET", "/api/consume/{name}", Access::Role(Role::Operator)),
    ("GET", "/api/flows", Access::Role(Role::Viewer)),
    ("GET", "/api/flows/lookup/{id}", Access::Role(Role::Viewer)),
    (
        "GET",
        "/api/flows/correlation/{id}",
        Access::Role(Role::Viewer),
    ),
    ("GET", "/api/flows/trace/{id}", Access::Role(Role::Viewer)),
    ("GET", "/api/flows/message/{id}", Access::Role(Role::Viewer)),
];

/// Routes that also accept the token as `?access_token=`, because browsers
/// cannot set headers on `EventSource` and `WebSocket`.
const QUERY_TOKEN_ROUTES: &[&str] = &["/api/stream", "/api/consume/{name}"];

/// The access rule of a route, if it has one. `HEAD` follows `GET`.
pub fn access(method: &Method, path: &str) -> Option<Access> {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    ROUTES
        .iter()
        .find(|(m, p, _)| *m == method && *p == path)
        .map(|(_, _, access)| *access)
}

/// Methods the access table has for a path.
fn methods(path: &str) -> Vec<&'static str> {
    ROUTES
        .iter()
        .filter(|(_, p, _)| *p == path)
        .map(|(m, _, _)| *m)
        .collect()
}

/// Known tokens, by SHA-256 digest.
#[derive(Clone, Debug, Default)]
pub struct Auth {
    roles: HashMap<[u8; 32], Role>,
}

/// SHA-256 of a token in lowercase hex (what token files store).
pub fn token_sha256_hex(token: &str) -> String {
    hex(&digest(token))
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

impl Auth {
    /// No tokens: every protected route answers `unauthorized`.
    pub fn none() -> Auth {
        Auth::default()
    }

    /// The tokens of a configuration. Fails naming a malformed digest.
    pub fn from_config(config: &AuthConfig) -> Result<Auth, String> {
        let mut auth = Auth::none();
        if let Some(token) = &config.admin_token {
            auth = auth.with_token(token, Role::Admin);
        }
        for (i, t) in config.tokens.iter().enumerate() {
            match (&t.token, &t.token_sha256) {
                (Some(token), None) => auth = auth.with_token(token, t.role),
                (None, Some(sha)) => {
                    auth = auth.with_digest_hex(sha, t.role).ok_or_else(|| {
                        format!("auth.tokens[{i}].token_sha256 is not 64 hex digits")
                    })?
                }
                _ => {
                    return Err(format!(
                        "auth.tokens[{i}] needs exactly one of `token` and `token_sha256`"
                    ));
                }
            }
        }
        Ok(auth)
    }

    /// Adds a token with a role.
    pub fn with_token(mut self, token: &str, role: Role) -> Auth {
        self.roles.insert(digest(token), role);
        self
    }

    /// Adds a token by its SHA-256 in hex; `None` when the text is not one.
    pub fn with_digest_hex(mut self, sha256_hex: &str, role: Role) -> Option<Auth> {
        self.roles
            .insert(parse_hex(&sha256_hex.to_ascii_lowercase())?, role);
        Some(self)
    }

    /// `true` when no token is known.
    pub fn is_empty(&self) -> bool {
        self.roles.is_empty()
    }

    /// The role of a token, if it is known.
    pub fn role(&self, token: &str) -> Option<Role> {
        self.roles.get(&digest(token)).copied()
    }
}

/// The caller's role, put in the request's extensions by [`require`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Caller(pub(crate) Option<Role>);

/// Middleware: finds the route's row in [`ROUTES`] and checks the bearer
/// token against it. Unmatched paths (the console's assets and the 404s)
/// pass through to the fallback, which serves only public content.
pub(crate) async fn require(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(path) = req.extensions().get::<MatchedPath>().cloned() else {
        return next.run(req).await;
    };
    let access = access(req.method(), path.as_str());
    let needed = match access {
        Some(Access::Public) => {
            req.extensions_mut().insert(Caller(None));
            return next.run(req).await;
        }
        Some(Access::Role(role)) => role,
        None if !methods(path.as_str()).is_empty() => {
            return ApiError::method_not_allowed(format!(
                "{} {} is not a route; this path takes {}",
                req.method(),
                path.as_str(),
                methods(path.as_str()).join(", ")
            ))
            .into_response();
        }
        None => {
            return ApiError::forbidden(format!(
                "{} {} has no access rule; denied by default",
                req.method(),
                path.as_str()
            ))
            .into_response();
        }
    };
    let token = bearer(&req).or_else(|| {
        QUERY_TOKEN_ROUTES
            .contains(&path.as_str())
            .then(|| query_token(&req))
            .flatten()
    });
    let Some(token) = token else {
        return ApiError::unauthorized(
            "missing bearer token: send `Authorization: Bearer <token>`",
        )
        .into_response();
    };
    let Some(role) = state.auth.role(&token) else {
        return ApiError::unauthorized("wrong token: the server knows no such token")
            .into_response();
    };
    if role < needed {
        return ApiError::forbidden(format!(
            "{} {} needs role `{}`; this token has role `{}`",
            req.method(),
            path.as_str(),
            needed.as_str(),
            role.as_str()
        ))
        .into_response();
    }
    req.extensions_mut().insert(Caller(Some(role)));
    next.run(req).await
}

fn bearer(req: &Request) -> Option<String> {
    let value = req.headers().get(axum::http::header::AUTHORIZATION)?;
    let text = value.to_str().ok()?;
    let (scheme, token) = text.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

fn query_token(req: &Request) -> Option<String> {
    let query = req.uri().query()?;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == "access_token").then(|| value.to_owned())
    })
}
