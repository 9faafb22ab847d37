//! Screen tests: what a person sees. A UI is attached to the test's Neovim (`nvim_ui_attach`
//! with `ext_linegrid` and `ext_hlstate`, no multigrid: floats and messages are composed into
//! the one grid, as a terminal shows them), its `redraw` batches are applied to a grid of cells,
//! and a snapshot is taken at each `flush` (what a UI would paint).
#![allow(dead_code)]

use super::{Nvim, DEADLINE};
use rmpv::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One highlight as `hl_attr_define` gives it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Attrs {
    pub fg: Option<u32>,
    pub bg: Option<u32>,
    pub bold: bool,
    pub italic: bool,
    pub underline: bool,
    pub reverse: bool,
    /// Highlight group names that made it (`hi_name` and `ui_name` of ext_hlstate's info).
    pub groups: Vec<String>,
}

#[derive(Clone, Debug, Default)]
struct Cell {
    text: String,
    hl: u64,
}

/// The UI's state: the grid being drawn, the highlights defined, and the last flushed picture.
#[derive(Default)]
pub struct Grid {
    cells: Vec<Vec<Cell>>,
    attrs: HashMap<u64, Attrs>,
    default_fg: Option<u32>,
    default_bg: Option<u32>,
    mode: String,
    flushed: Option<Snapshot>,
    flushes: u64,
}

/// The screen as it was at a flush.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    cells: Vec<Vec<Cell>>,
    attrs: HashMap<u64, Attrs>,
    default_fg: Option<u32>,
    default_bg: Option<u32>,
    /// The mode Neovim told the UI (`mode_change`), e.g. `normal`, `cmdline_normal`.
    pub mode: String,
    /// Set by [`Nvim::screen`]: Neovim waits at a hit-enter or more prompt.
    pub blocking: bool,
    pub width: usize,
    pub height: usize,
}

fn int(v: &Value) -> i64 {
    v.as_i64()
        .or_else(|| v.as_u64().map(|u| u as i64))
        .unwrap_or(0)
}

fn map_get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

impl Grid {
    /// Applies one `redraw` notification (a batch of `[name, args...]` updates).
    pub fn apply(&mut self, batch: &[Value]) {
        for update in batch {
            let Some(items) = update.as_array() else {
                continue;
            };
            let Some(name) = items.first().and_then(Value::as_str) else {
                continue;
            };
            for args in &items[1..] {
                let a = args.as_array().map(Vec::as_slice).unwrap_or(&[]);
                self.one(name, a);
            }
        }
    }

    fn one(&mut self, name: &str, a: &[Value]) {
        match name {
            "grid_resize" => {
                let (w, h) = (int(&a[1]) as usize, int(&a[2]) as usize);
                self.cells.resize(h, Vec::new());
                for row in &mut self.cells {
                    row.resize(w, Cell::blank());
                }
            }
            "grid_clear" => {
                for row in &mut self.cells {
                    row.iter_mut().for_each(|c| *c = Cell::blank());
                }
            }
            "default_colors_set" => {
                self.default_fg = a.first().map(int).filter(|v| *v >= 0).map(|v| v as u32);
                self.default_bg = a.get(1).map(int).filter(|v| *v >= 0).map(|v| v as u32);
            }
            "hl_attr_define" => {
                let id = int(&a[0]) as u64;
                self.attrs.insert(id, attrs_of(&a[1], a.get(3)));
            }
            "grid_line" => self.line(a),
            "grid_scroll" => self.scroll(a),
            "mode_change" => {
                self.mode = a.first().and_then(Value::as_str).unwrap_or("").to_string();
            }
            "flush" => {
                self.flushes += 1;
                self.flushed = Some(self.picture());
            }
            _ => {}
        }
    }

    fn line(&mut self, a: &[Value]) {
        let row = int(&a[1]) as usize;
        let mut col = int(&a[2]) as usize;
        let Some(cells) = a[3].as_array() else {
            return;
        };
        let Some(line) = self.cells.get_mut(row) else {
            return;
        };
        let mut hl = 0u64;
        for c in cells {
            let c = c.as_array().map(Vec::as_slice).unwrap_or(&[]);
            let text = c.first().and_then(Value::as_str).unwrap_or("").to_string();
            if let Some(h) = c.get(1) {
                hl = int(h) as u64;
            }
            let repeat = c.get(2).map(int).unwrap_or(1).max(1) as usize;
            for _ in 0..repeat {
                if let Some(cell) = line.get_mut(col) {
                    *cell = Cell {
                        text: text.clone(),
                        hl,
                    };
                }
                col += 1;
            }
        }
    }

    fn scroll(&mut self, a: &[Value]) {
        let (top, bot) = (int(&a[1]) as usize, int(&a[2]) as usize);
        let (left, right) = (int(&a[3]) as usize, int(&a[4]) as usize);
        let rows = int(&a[5]);
        let copy = |g: &mut Vec<Vec<Cell>>, from: usize, to: usize| {
            for c in left..right.min(g[from].len()) {
                g[to][c] = g[from][c].clone();
            }
        };
        if rows > 0 {
            let n = rows as usize;
            for r in top..bot.saturating_sub(n) {
                copy(&mut self.cells, r + n, r);
            }
        } else {
            let n = (-rows) as usize;
            for r in (top + n..bot).rev() {
                copy(&mut self.cells, r - n, r);
            }
        }
    }

    fn picture(&self) -> Snapshot {
        Snapshot {
            cells: self.cells.clone(),
            attrs: self.attrs.clone(),
            default_fg: self.default_fg,
            default_bg: self.default_bg,
            mode: self.mode.clone(),
            blocking: false,
            width: self.cells.first().map_or(0, Vec::len),
            height: self.cells.len(),
        }
    }
}

impl Cell {
    fn blank() -> Cell {
        Cell {
            text: " ".into(),
            hl: 0,
        }
    }
}

fn attrs_of(rgb: &Value, info: Option<&Value>) -> Attrs {
    let color = |k: &str| map_get(rgb, k).map(|v| int(v) as u32);
    let flag = |k: &str| map_get(rgb, k).and_then(Value::as_bool).unwrap_or(false);
    let mut groups = Vec::new();
    for item in info
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        for key in ["hi_name", "ui_name"] {
            if let Some(n) = map_get(item, key).and_then(Value::as_str) {
                if !groups.iter().any(|g| g == n) {
                    groups.push(n.to_string());
                }
            }
        }
    }
    Attrs {
        fg: color("foreground"),
        bg: color("background"),
        bold: flag("bold"),
        italic: flag("italic"),
        underline: flag("underline"),
        reverse: flag("reverse"),
        groups,
    }
}

impl Snapshot {
    /// Row `r` as text (every cell; the right half of a wide character is empty).
    pub fn row(&self, r: usize) -> String {
        self.cells
            .get(r)
            .map(|row| row.iter().map(|c| c.text.as_str()).collect())
            .unwrap_or_default()
    }

    /// Every row, trailing spaces trimmed, joined by `\n`.
    pub fn text(&self) -> String {
        (0..self.height)
            .map(|r| self.row(r).trim_end().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The first cell where `needle` starts: (row, column in cells).
    pub fn find(&self, needle: &str) -> Option<(usize, usize)> {
        for r in 0..self.height {
            let row = &self.cells[r];
            for c in 0..row.len() {
                let mut s = String::new();
                for cell in &row[c..] {
                    s.push_str(&cell.text);
                    if s.len() >= needle.len() {
                        break;
                    }
                }
                if s.starts_with(needle) {
                    return Some((r, c));
                }
            }
        }
        None
    }

    /// Whether any row holds `needle`.
    pub fn contains(&self, needle: &str) -> bool {
        (0..self.height).any(|r| self.row(r).contains(needle))
    }

    pub fn attrs_at(&self, row: usize, col: usize) -> Attrs {
        let hl = self
            .cells
            .get(row)
            .and_then(|r| r.get(col))
            .map_or(0, |c| c.hl);
        self.attrs.get(&hl).cloned().unwrap_or_default()
    }

    /// The highlight groups that made the cell (from ext_hlstate; a linked group shows as the
    /// group it links to).
    pub fn groups_at(&self, row: usize, col: usize) -> Vec<String> {
        self.attrs_at(row, col).groups
    }

    /// The cell's background (the default background when the highlight sets none).
    pub fn bg_at(&self, row: usize, col: usize) -> Option<u32> {
        self.attrs_at(row, col).bg.or(self.default_bg)
    }

    /// The cell's foreground (the default foreground when the highlight sets none).
    pub fn fg_at(&self, row: usize, col: usize) -> Option<u32> {
        self.attrs_at(row, col).fg.or(self.default_fg)
    }

    /// A hit-enter or more prompt is up: Neovim waits for a key.
    pub fn hit_enter(&self) -> bool {
        self.blocking || self.contains("Press ENTER") || self.contains("-- More --")
    }

    /// The screen as text between rulers, for a failure message or a note.
    pub fn dump(&self) -> String {
        let rule = "-".repeat(self.width);
        format!("{rule}\n{}\n{rule}", self.text())
    }
}

impl Nvim {
    /// Like [`Nvim::start_with`], with a UI of `width` × `height` attached and the built-in
    /// `vim.notify` kept (messages go to the screen, not to the test).
    pub async fn start_ui(url: &str, env: &[(&str, &str)], width: i64, height: i64) -> Nvim {
        let mut env = env.to_vec();
        env.push(("FRUGAL_TEST_UI", "1"));
        let n = Nvim::start_with(url, &env).await;
        let mut opts = nvim_rs::UiAttachOptions::new();
        opts.set_rgb(true)
            .set_linegrid_external(true)
            .set_hlstate_external(true);
        // Counted before attaching: the first flush may arrive before `ui_attach` returns.
        let start = n.grid.lock().unwrap().flushes;
        n.api
            .ui_attach(width, height, &opts)
            .await
            .expect("nvim_ui_attach");
        n.wait_flush_after(start).await;
        n
    }

    pub async fn resize_ui(&self, width: i64, height: i64) {
        let start = self.grid.lock().unwrap().flushes;
        self.api
            .ui_try_resize(width, height)
            .await
            .expect("nvim_ui_try_resize");
        self.wait_flush_after(start).await;
    }

    async fn wait_flush_after(&self, count: u64) {
        let end = Instant::now() + DEADLINE;
        while self.grid.lock().unwrap().flushes <= count {
            assert!(
                Instant::now() < end,
                "no flush from the UI within the deadline"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The screen as last flushed, once Neovim has been quiet (no new flush) for a moment,
    /// with `blocking` from `nvim_get_mode` (answered even at a prompt).
    pub async fn screen(&self) -> Snapshot {
        let end = Instant::now() + Duration::from_secs(2);
        let mut seen = self.grid.lock().unwrap().flushes;
        loop {
            tokio::time::sleep(Duration::from_millis(60)).await;
            let now = self.grid.lock().unwrap().flushes;
            if now == seen || Instant::now() >= end {
                break;
            }
            seen = now;
        }
        let mut snap = self
            .grid
            .lock()
            .unwrap()
            .flushed
            .clone()
            .unwrap_or_default();
        snap.blocking = self.blocking().await;
        snap
    }

    /// Whether Neovim waits for a key (`nvim_get_mode().blocking`).
    pub async fn blocking(&self) -> bool {
        let mode = self.api.get_mode().await.expect("nvim_get_mode");
        mode.iter()
            .any(|(k, v)| k.as_str() == Some("blocking") && v.as_bool() == Some(true))
    }

    /// Polls the screen until `f` holds; panics with the last screen at the deadline.
    pub async fn wait_screen(&self, what: &str, f: impl Fn(&Snapshot) -> bool) -> Snapshot {
        let end = Instant::now() + DEADLINE;
        loop {
            let snap = self.grid.lock().unwrap().flushed.clone();
            if let Some(mut s) = snap {
                if f(&s) {
                    s.blocking = self.blocking().await;
                    return s;
                }
                if Instant::now() >= end {
                    panic!(
                        "timed out waiting for the screen to show {what}:\n{}",
                        s.dump()
                    );
                }
            } else if Instant::now() >= end {
                panic!("timed out waiting for {what}: nothing was ever drawn");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The background colour of a highlight group, links followed (`nvim_get_hl`).
    pub async fn hl_bg(&self, group: &str) -> Option<u32> {
        let v = self
            .lua(&format!(
                "return vim.api.nvim_get_hl(0, {{ name = {group:?}, link = false }}).bg or vim.NIL"
            ))
            .await;
        v.as_u64().map(|b| b as u32)
    }

    /// The foreground colour of a highlight group, links followed.
    pub async fn hl_fg(&self, group: &str) -> Option<u32> {
        let v = self
            .lua(&format!(
                "return vim.api.nvim_get_hl(0, {{ name = {group:?}, link = false }}).fg or vim.NIL"
            ))
            .await;
        v.as_u64().map(|b| b as u32)
    }
}

pub type Shared = Arc<Mutex<Grid>>;
