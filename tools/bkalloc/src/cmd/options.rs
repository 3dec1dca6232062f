// SPDX-License-Identifier: GPL-2.0

//! `bkalloc options`: the option table for a terminal, or (`--rst`) as a
//! reStructuredText list table, the one source of the options section in
//! `Documentation/admin-guide.rst`.

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

/// The option table as a reStructuredText `list-table`, one row per option.
pub fn rst() -> String {
    let mut out = String::new();
    out.push_str(".. list-table::\n   :header-rows: 1\n\n");
    let header = [
        "option",
        "values",
        "default",
        "settable at",
        "persistent",
        "meaning",
    ];
    row(&mut out, &header.map(String::from));
    for d in OPTIONS.iter() {
        let unit = if d.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", d.unit)
        };
        row(
            &mut out,
            &[
                format!("``{}``", d.name),
                format!("{}{}", values(d.ty), unit),
                d.display(d.default).to_string(),
                settable(d.settable),
                if d.persistent { "yes" } else { "no" }.to_string(),
                d.doc.to_string(),
            ],
        );
    }
    out
}

/// The option table for a terminal: one line per option, its meaning below.
pub fn text() -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<26} {:<20} {:<8} {:<26} persistent",
        "option", "values", "default", "settable at"
    );
    for d in OPTIONS.iter() {
        let unit = if d.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", d.unit)
        };
        let _ = writeln!(
            out,
            "{:<26} {:<20} {:<8} {:<26} {}\n    {}",
            d.name,
            format!("{}{}", values(d.ty), unit),
            d.display(d.default).to_string(),
            settable(d.settable),
            if d.persistent { "yes" } else { "no" },
            d.doc
        );
    }
    out
}

/// The option table as one JSON array: per option its name, type and range
/// or names, default, unit, when it is settable, whether it persists, and
/// its meaning.
pub fn json() -> String {
    let all: Vec<serde_json::Value> = OPTIONS
        .iter()
        .map(|d| {
            let (ty, range) = match d.ty {
                OptType::Uint { min, max } => ("uint", serde_json::json!({ "min": min, "max": max })),
                OptType::Bool => ("bool", serde_json::json!({ "min": 0, "max": 1 })),
                OptType::Enum(names) => ("enum", serde_json::json!({ "names": names })),
            };
            let default = match d.ty {
                OptType::Enum(_) => serde_json::json!(d.display(d.default).to_string()),
                _ => serde_json::json!(d.default),
            };
            serde_json::json!({
                "name": d.name,
                "type": ty,
                "values": range,
                "default": default,
                "unit": d.unit,
                "settable": settable(d.settable).split(", ").filter(|s| !s.is_empty()).collect::<Vec<_>>(),
                "persistent": d.persistent,
                "doc": d.doc,
            })
        })
        .collect();
    let mut out = serde_json::to_string_pretty(&all).unwrap_or_default();
    out.push('\n');
    out
}

/// One row of a `list-table`: `* - ` before the first cell, `  - ` before the others.
fn row(out: &mut String, cells: &[String]) {
    for (i, cell) in cells.iter().enumerate() {
        let _ = writeln!(out, "   {} {cell}", if i == 0 { "* -" } else { "  -" });
    }
}
