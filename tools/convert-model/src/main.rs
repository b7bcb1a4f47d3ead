//! Converts the offline classifier from ONNX (how it was built, `models/PROVENANCE.md`) to NNEF,
//! the format tract loads without its ONNX front end: tract-onnx, tract-hir and their protobuf
//! code are a large share of the first build's work and none of a scan's.
//!
//! `cargo run --release --manifest-path tools/convert-model/Cargo.toml -- models/effnet_lite0_f16w.onnx models/effnet_lite0.nnef.tgz`
//!
//! The graph is typed with the detector's one input shape. Typing folds the ONNX graph's fp16 →
//! fp32 casts of the weights, so the archive holds fp32 weights; their low mantissa bits are all
//! zero, which gzip squeezes out (10.2 MB compressed, against 9.3 MB of ONNX).

use std::io::Write;

use anyhow::Context;
use tract_onnx::prelude::*;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (source, target) = match (args.next(), args.next()) {
        (Some(source), Some(target)) => (source, target),
        _ => anyhow::bail!("usage: convert-model <model.onnx> <model.nnef.tgz>"),
    };
    let model = tract_onnx::onnx()
        .model_for_path(&source)
        .with_context(|| format!("reading {source}"))?
        .with_input_fact(0, f32::fact([1, 3, 224, 224]).into())?
        .into_typed()?;
    let file = std::fs::File::create(&target).with_context(|| format!("creating {target}"))?;
    let gzip = flate2::write::GzEncoder::new(file, flate2::Compression::best());
    let gzip = tract_nnef::nnef()
        .write_to_tar(&model, gzip)
        .with_context(|| format!("writing {target}"))?;
    gzip.finish()?.flush()?;
    println!("{target}: {} nodes", model.nodes().len());
    Ok(())
}
