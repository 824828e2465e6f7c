//! The only commands the console may call (see `capabilities/default.json`):
//! where the engine is. Everything else goes through the HTTP API.

use tauri::State;

use crate::Host;
use crate::host::EngineUrl;

/// The engine's base URL and token, for the console's API client.
#[tauri::command]
pub(crate) async fn engine_url(host: State<'_, Host>) -> Result<EngineUrl, String> {
    host.engine_url()
        .await
        .ok_or_else(|| "no engine is open: choose a database or a server".to_owned())
}
