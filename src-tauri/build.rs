fn main() {
    // Declaring the app's commands makes each one need an explicit
    // permission (`allow-<command>`) in a capability: nothing is granted by
    // default.
    let attributes = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(&["engine_url"]));
    tauri_build::try_build(attributes).expect("tauri build script failed");
}
