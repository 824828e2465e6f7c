//! The native menu: open or create a local database, the recent list,
//! show the data folder, reload, quit; plus the standard Edit menu (the
//! clipboard shortcuts on macOS need it).

use tauri::menu::{Menu, MenuBuilder, MenuEvent, MenuItemBuilder, SubmenuBuilder};
use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_dialog::DialogExt;
use tauri_plugin_opener::OpenerExt;

use crate::{Host, MAIN_WINDOW, Target, ask_for_server, switch_to, target_of};

const OPEN_LOCAL: &str = "open-local";
const OPEN_DEMO: &str = "open-demo";
const CONNECT: &str = "connect";
const SHOW_DATA: &str = "show-data";
const RELOAD: &str = "reload";
const QUIT: &str = "quit";
const RECENT_PREFIX: &str = "recent:";

/// Sets the menu and its handler (once, at start).
pub(crate) fn install<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
    app.set_menu(build(app)?)?;
    app.on_menu_event(handle);
    Ok(())
}

/// Rebuilds the menu (the recent list changed).
pub(crate) fn refresh<R: Runtime>(app: &AppHandle<R>) {
    match build(app) {
        Ok(menu) => {
            if let Err(e) = app.set_menu(menu) {
                tracing::warn!(error = %e, "cannot set the menu");
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot build the menu"),
    }
}

fn build<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<Menu<R>> {
    let recents = app.state::<Host>().recent_entries();
    let mut recent = SubmenuBuilder::new(app, "Open Recent");
    if recents.is_empty() {
        recent = recent.text("recent-none", "(none yet)");
    }
    for (i, entry) in recents.iter().enumerate() {
        recent = recent.text(format!("{RECENT_PREFIX}{i}"), entry.label());
    }
    let file = SubmenuBuilder::new(app, "File")
        .text(OPEN_LOCAL, "Open or Create Local Database…")
        .text(OPEN_DEMO, "Open Local Database with Demo Workload…")
        .text(CONNECT, "Connect to Server…")
        .item(&recent.build()?)
        .separator()
        .text(SHOW_DATA, "Show Data Folder")
        .text(RELOAD, "Reload Console")
        .separator()
        .item(
            &MenuItemBuilder::with_id(QUIT, "Quit")
                .accelerator("CmdOrCtrl+Q")
                .build(app)?,
        )
        .build()?;
    let edit = SubmenuBuilder::new(app, "Edit")
        .undo()
        .redo()
        .separator()
        .cut()
        .copy()
        .paste()
        .select_all()
        .build()?;
    MenuBuilder::new(app).item(&file).item(&edit).build()
}

fn handle<R: Runtime>(app: &AppHandle<R>, event: MenuEvent) {
    let id = event.id().as_ref();
    match id {
        OPEN_LOCAL | OPEN_DEMO => {
            let demo = id == OPEN_DEMO;
            let app = app.clone();
            app.dialog()
                .file()
                .set_title("Choose or create a Switchyard data folder")
                .pick_folder(move |picked| {
                    let Some(dir) = picked.and_then(|p| p.into_path().ok()) else {
                        return;
                    };
                    switch_to(&app, Target::Local { dir, demo });
                });
        }
        CONNECT => ask_for_server(app),
        // Through the run loop, so `RunEvent::Exit` closes the engine.
        QUIT => app.exit(0),
        SHOW_DATA => {
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                if let Some(dir) = app.state::<Host>().local_dir().await
                    && let Err(e) = app.opener().open_path(dir.to_string_lossy(), None::<&str>)
                {
                    tracing::warn!(error = %e, "cannot show the data folder");
                }
            });
        }
        RELOAD => {
            if let Some(window) = app.get_webview_window(MAIN_WINDOW) {
                let _ = window.reload();
            }
        }
        _ => {
            if let Some(index) = id
                .strip_prefix(RECENT_PREFIX)
                .and_then(|i| i.parse::<usize>().ok())
                && let Some(entry) = app.state::<Host>().recent_entries().get(index)
            {
                switch_to(app, target_of(entry));
            }
        }
    }
}
