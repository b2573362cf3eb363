//! The table `all` prints: one row per figure (Markdown), each rate also as a ratio to the
//! raw reference, and the goals after it, each met or not.

/// One line of the table.
struct Row {
    figure: String,
    value: String,
    /// The figure as a share of the raw reference (rates only).
    vs_raw: Option<f64>,
    params: String,
}

/// The table being built, with the raw reference rate.
pub struct Table {
    /// The raw reference, datagrams per second.
    pub raw: f64,
    rows: Vec<Row>,
}

impl Table {
    /// An empty table whose rates are divided by `raw`.
    pub fn new(raw: f64) -> Table {
        Table {
            raw,
            rows: Vec::new(),
        }
    }

    /// A row that is not a rate.
    pub fn add(
        &mut self,
        figure: impl Into<String>,
        value: impl Into<String>,
        params: impl Into<String>,
    ) {
        self.rows.push(Row {
            figure: figure.into(),
            value: value.into(),
            vs_raw: None,
            params: params.into(),
        });
    }

    /// A rate of room messages, with its ratio to the raw reference.
    pub fn rate(&mut self, figure: impl Into<String>, per_second: f64, params: impl Into<String>) {
        self.rate_in(figure, per_second, "msg/s", params);
    }

    /// A rate in `unit`, with its ratio to the raw reference.
    pub fn rate_in(
        &mut self,
        figure: impl Into<String>,
        per_second: f64,
        unit: &str,
        params: impl Into<String>,
    ) {
        self.rows.push(Row {
            figure: figure.into(),
            value: format!("{per_second:.0} {unit}"),
            vs_raw: Some(per_second / self.raw),
            params: params.into(),
        });
    }

    /// Prints the table as Markdown.
    pub fn print(&self) {
        println!("| figure | value | vs raw | parameters |");
        println!("|---|---|---|---|");
        for r in &self.rows {
            println!(
                "| {} | {} | {} | {} |",
                r.figure,
                r.value,
                r.vs_raw.map_or(String::new(), |x| format!("{x:.3}")),
                r.params
            );
        }
    }
}

/// Prints a goal and whether it is met.
pub fn goal(text: &str, met: Option<bool>, figure: String) {
    let verdict = match met {
        Some(true) => "met",
        Some(false) => "NOT met",
        None => "not measured",
    };
    println!("- {text}: {verdict} ({figure})");
}
