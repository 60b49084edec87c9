//! Progress bars for people at a terminal: on stderr, never on stdout, and only when stderr is a
//! terminal and `--quiet` is off.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar counting to `total` `unit`s, or a hidden one where nobody would see it.
pub fn bar(total: u64, unit: &str, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let template = format!("{{bar:40}} {{pos}}/{{len}} {unit} · {{per_sec}} · {{eta}} left");
    bar.set_style(ProgressStyle::with_template(&template).expect("a valid template"));
    bar
}
