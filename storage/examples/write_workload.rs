//! Writes a synthetic node-exporter-like hour into a data directory and reports its size, so the
//! files can be inspected with DuckDB or other Parquet tools.
//!
//! `cargo run -p tributary-storage --features test-util --example write_workload -- <data_dir> [nodes]`

use std::path::PathBuf;

use tributary_storage::read::SelectRequest;
use tributary_storage::test_util::workload::Workload;
use tributary_storage::types::{Matcher, TimeRange};
use tributary_storage::{Storage, StorageConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("usage: write_workload <data_dir> [nodes]")?);
    let nodes: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(16);

    let series = Workload {
        nodes,
        ..Workload::default()
    }
    .series();
    let storage = Storage::open(&StorageConfig::default(), &dir).await?;
    let summary = storage.write_metrics(&series).await?;
    eprintln!(
        "{} series, {} samples in {} files, {} bytes: {:.3} bytes/sample",
        series.len(),
        summary.rows,
        summary.files.len(),
        summary.bytes,
        summary.bytes as f64 / summary.rows as f64
    );
    for f in &summary.files {
        eprintln!("  {}", dir.join(f).display());
    }

    let req = SelectRequest::new(vec![Matcher::equal("__name__", "node_load1")], TimeRange::ALL);
    let found = storage.source().select(&req).await?;
    eprintln!("read back node_load1: {} series", found.len());
    Ok(())
}
