//! TEXMEX `.fvecs` / `.ivecs`: each row is a little-endian i32 length followed by that many
//! f32 (fvecs) or i32 (ivecs) values.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum VecIoError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {msg}")]
    Format { path: PathBuf, msg: String },
}

/// A dense row-major matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix<T> {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<T>,
}

impl<T> Matrix<T> {
    pub fn new(data: Vec<T>, cols: usize) -> Self {
        let rows = data.len().checked_div(cols).unwrap_or(0);
        Self { rows, cols, data }
    }

    pub fn row(&self, i: usize) -> &[T] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> VecIoError + '_ {
    move |source| VecIoError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn write_rows<T: Copy>(path: &Path, m: &Matrix<T>, enc: impl Fn(T) -> [u8; 4]) -> Result<(), VecIoError> {
    let cols = i32::try_from(m.cols).map_err(|_| VecIoError::Format {
        path: path.to_path_buf(),
        msg: format!("{} columns do not fit in i32", m.cols),
    })?;
    let file = File::create(path).map_err(io_err(path))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let mut buf = Vec::with_capacity(4 + 4 * m.cols);
    for r in 0..m.rows {
        buf.clear();
        buf.extend_from_slice(&cols.to_le_bytes());
        for &v in m.row(r) {
            buf.extend_from_slice(&enc(v));
        }
        w.write_all(&buf).map_err(io_err(path))?;
    }
    w.flush().map_err(io_err(path))?;
    w.get_ref().sync_all().map_err(io_err(path))
}

fn read_rows<T>(path: &Path, dec: impl Fn([u8; 4]) -> T) -> Result<Matrix<T>, VecIoError> {
    let mut bytes = Vec::new();
    File::open(path)
        .map_err(io_err(path))?
        .read_to_end(&mut bytes)
        .map_err(io_err(path))?;
    let bad = |msg: String| VecIoError::Format {
        path: path.to_path_buf(),
        msg,
    };
    if bytes.is_empty() {
        return Ok(Matrix::new(Vec::new(), 0));
    }
    if bytes.len() < 4 {
        return Err(bad("truncated header".into()));
    }
    let word = |off: usize| [bytes[off], bytes[off + 1], bytes[off + 2], bytes[off + 3]];
    let cols = i32::from_le_bytes(word(0));
    if cols <= 0 {
        return Err(bad(format!("invalid row length {cols}")));
    }
    let cols = cols as usize;
    let stride = 4 + 4 * cols;
    if bytes.len() % stride != 0 {
        return Err(bad(format!(
            "size {} is not a multiple of row size {stride}",
            bytes.len()
        )));
    }
    let rows = bytes.len() / stride;
    let mut data = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        let off = r * stride;
        let len = i32::from_le_bytes(word(off));
        if len as usize != cols {
            return Err(bad(format!("row {r} has length {len}, expected {cols}")));
        }
        for c in 0..cols {
            data.push(dec(word(off + 4 + 4 * c)));
        }
    }
    Ok(Matrix { rows, cols, data })
}

pub fn write_fvecs(path: &Path, m: &Matrix<f32>) -> Result<(), VecIoError> {
    write_rows(path, m, f32::to_le_bytes)
}

pub fn read_fvecs(path: &Path) -> Result<Matrix<f32>, VecIoError> {
    read_rows(path, f32::from_le_bytes)
}

/// ids are stored as i32 in the format; u32::MAX (padding) round-trips as -1.
pub fn write_ivecs(path: &Path, m: &Matrix<u32>) -> Result<(), VecIoError> {
    write_rows(path, m, |v| (v as i32).to_le_bytes())
}

pub fn read_ivecs(path: &Path) -> Result<Matrix<u32>, VecIoError> {
    read_rows(path, |b| i32::from_le_bytes(b) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fvecs_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("a.fvecs");
        let m = Matrix::new(vec![1.5f32, -2.0, f32::MIN_POSITIVE, 3.25, 0.0, 7.0], 3);
        write_fvecs(&p, &m).expect("write");
        assert_eq!(std::fs::metadata(&p).expect("meta").len(), 2 * (4 + 12));
        assert_eq!(read_fvecs(&p).expect("read"), m);
    }

    #[test]
    fn ivecs_round_trip_including_padding() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("a.ivecs");
        let m = Matrix::new(vec![0u32, 5, 99_999, u32::MAX], 2);
        write_ivecs(&p, &m).expect("write");
        assert_eq!(read_ivecs(&p).expect("read"), m);
    }

    #[test]
    fn rejects_truncated_and_inconsistent_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("bad.fvecs");
        std::fs::write(&p, [2u8, 0, 0, 0, 0, 0, 128, 63]).expect("write");
        assert!(matches!(read_fvecs(&p), Err(VecIoError::Format { .. })));
        let mut rows = Vec::new();
        rows.extend_from_slice(&1i32.to_le_bytes());
        rows.extend_from_slice(&1f32.to_le_bytes());
        rows.extend_from_slice(&2i32.to_le_bytes());
        rows.extend_from_slice(&1f32.to_le_bytes());
        std::fs::write(&p, &rows).expect("write");
        assert!(read_fvecs(&p).is_err());
        assert!(matches!(
            read_fvecs(&dir.path().join("missing.fvecs")),
            Err(VecIoError::Io { .. })
        ));
    }
}
