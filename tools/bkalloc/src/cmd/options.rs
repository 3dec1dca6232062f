// SPDX-License-Identifier: GPL-2.0

//! `bkalloc options`: the option table as a Markdown table, the one source of
//! the options section in `Documentation/admin-guide.md`.

use bkcore::options::{OptType, When, OPTIONS};
use std::fmt::Write;

fn settable(w: When) -> String {
    let mut at = Vec::new();
    for (moment, name) in [
        (When::FORMAT, "format"),
        (When::REGISTER, "register"),
        (When::RUNTIME, "runtime"),
    ] {
        if w.intersects(moment) {
            at.push(name);
        }
    }
    at.join(", ")
}

fn values(ty: OptType) -> String {
    match ty {
        OptType::Uint { min, max } => format!("{min}..{max}"),
        OptType::Bool => "0 / 1".to_string(),
        OptType::Enum(names) => names.join(" / "),
    }
}

/// The option table in Markdown.
pub fn markdown() -> String {
    let mut out = String::new();
    out.push_str("| option | values | default | settable at | persistent | meaning |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for d in OPTIONS.iter() {
        let unit = if d.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", d.unit)
        };
        let _ = writeln!(
            out,
            "| `{}` | {}{} | {} | {} | {} | {} |",
            d.name,
            values(d.ty),
            unit,
            d.display(d.default),
            settable(d.settable),
            if d.persistent { "yes" } else { "no" },
            d.doc
        );
    }
    out
}
