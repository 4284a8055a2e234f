//! An in-process server for the API and the browser tests.
use costbridge_server::state::AppState;
use costbridge_server::{App, Settings};
use tokio::sync::oneshot::Sender;

/// Starts a server with these settings in the background: its base URL, its state, and a
/// sender that stops it (dropping it does too).
pub async fn serve(settings: Settings) -> (String, AppState, Sender<()>) {
    let app = App::build(settings).await.expect("app builds");
    let base = format!("http://{}", app.addr);
    let state = app.state.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run(
        async move {
            let _ = stopped.await;
        },
        std::future::pending(),
    ));
    (base, state, stop)
}
