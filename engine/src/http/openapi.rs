//! The OpenAPI 3.1 document: a base (title, version, bearer scheme) that the
//! routes add their paths and schemas to (utoipa-axum), so the document is
//! generated from the handlers and cannot drift from them. A test keeps the
//! checked-in copy, `ui/src/api/openapi.json`, equal to it.

use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchyard",
        description = "The HTTP API of `switchyard serve` (docs/api.md)."
    ),
    components(schemas(
        crate::http::dto::ErrorResponse,
        crate::http::dto::ConsumeStart,
        crate::http::dto::ConsumeSettle,
        crate::http::dto::ConsumeFrame,
        crate::http::dto::FeedEvent,
        crate::http::dto::Overview,
    ))
)]
struct Base;

/// The document before routes are added.
pub(crate) fn base() -> utoipa::openapi::OpenApi {
    let mut api = Base::openapi();
    api.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let components = api.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    api
}

/// The document as pretty JSON, with a trailing newline.
pub(crate) fn to_json(api: utoipa::openapi::OpenApi) -> String {
    let mut text = api
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    text.push('\n');
    text
}
