//! What every full page shows around its content; [`Layout::new`] (in the parent module) fills
//! it for a signed-in viewer.
use super::assets;

/// What every full page shows around its content.
pub struct Layout {
    pub title: String,
    pub company: String,
    pub user_name: String,
    pub csrf: String,
    /// Which top-level section is current: "codes", "erp" or "settings".
    pub section: &'static str,
    pub can_codes: bool,
    pub can_erp: bool,
    pub css: &'static str,
    pub js: &'static str,
    pub htmx: &'static str,
}

impl Layout {
    /// The layout of pages shown before anyone signs in.
    pub fn bare(title: impl Into<String>) -> Layout {
        Layout {
            title: title.into(),
            company: String::new(),
            user_name: String::new(),
            csrf: String::new(),
            section: "",
            can_codes: false,
            can_erp: false,
            css: assets::css(),
            js: assets::js(),
            htmx: assets::htmx(),
        }
    }
}
