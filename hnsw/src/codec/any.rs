//! Which code a graph uses: the public configuration (`Quantization`), the closed set of codes
//! a graph can hold (`AnyCode`, dispatched once per public call), and how a code's parameters
//! are written into an index file (`StoredCode`).

use std::sync::Arc;

use super::binary::BinaryCode;
use super::compact::{F16Code, Precision, U8Code};
use super::f32::F32Code;
use super::multi::MultiCode;
use super::pq::{Compression, ProductCode};
use super::scalar::ScalarCode;
use super::turbo::{TurboBits, TurboCode};
use super::Code;
use crate::kernels::Metric;
use crate::{Error, Result};

/// How a quantized graph encodes its vectors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Quantization {
    /// int8: one range [lo, hi] for every dimension, each value one byte. `quantile`
    /// (0.5..=1.0) keeps that share of the sample's values inside the range, cutting the tails;
    /// none takes the sample's min and max.
    Scalar { quantile: Option<f32> },
    /// A few bits per dimension, compared with XOR and popcount.
    Binary {
        encoding: BinaryEncoding,
        query_encoding: BinaryQueryEncoding,
    },
    /// Product quantization: sub-vectors replaced by the index of their nearest centroid.
    Product { compression: Compression },
    /// TurboQuant: a random rotation, then a few bits per rotated coordinate.
    Turbo { bits: TurboBits },
}

/// Bits a binary code keeps per dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BinaryEncoding {
    /// The sign of each value.
    #[default]
    OneBit,
    /// Three levels per dimension from its sample mean and standard deviation (below
    /// mean - 2/3 sd, within, above mean + 2/3 sd), as two thermometer bits.
    TwoBits,
    /// Like `TwoBits`, but the upper bits of two neighbouring dimensions are OR-ed into one.
    OneAndHalfBits,
}

/// How a binary graph prepares its queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BinaryQueryEncoding {
    /// As `Binary`.
    #[default]
    Default,
    /// The query gets the same bits as the stored vectors (XOR + popcount).
    Binary,
    /// The query kept at 4 bits per value, scored against the stored bits.
    Scalar4Bits,
    /// The query kept at 8 bits per value, scored against the stored bits.
    Scalar8Bits,
}

/// What an index file needs of a code besides `Code`: its identity and parameters as bytes.
pub trait StoredCode: Code {
    /// The code's tag in index files (0 is F32).
    const KIND: u8;
    /// The configuration it was trained with; None for `F32Code`.
    fn quantization(&self) -> Option<Quantization>;
    /// Its parameters (dimension and metric are stored by the file already).
    fn write_params(&self, out: &mut Vec<u8>);
    /// Reads what `write_params` wrote; a damaged or inconsistent block is an error.
    fn read_params(dim: usize, metric: Metric, bytes: &[u8]) -> Result<Self>;
}

/// The code a graph holds. Shared (`Arc`) so a rebuilt graph keeps the very same code.
#[derive(Clone)]
pub(crate) enum AnyCode {
    F32(Arc<F32Code>),
    F16(Arc<F16Code>),
    U8(Arc<U8Code>),
    Scalar(Arc<ScalarCode>),
    Binary(Arc<BinaryCode>),
    Product(Arc<ProductCode>),
    Turbo(Arc<TurboCode>),
    MultiF32(Arc<MultiCode<F32Code>>),
    MultiF16(Arc<MultiCode<F16Code>>),
    MultiU8(Arc<MultiCode<U8Code>>),
    MultiScalar(Arc<MultiCode<ScalarCode>>),
    MultiBinary(Arc<MultiCode<BinaryCode>>),
    MultiProduct(Arc<MultiCode<ProductCode>>),
    MultiTurbo(Arc<MultiCode<TurboCode>>),
}

/// Runs `$body` with `$c` bound to the concrete code inside `$any` (an `&AnyCode`): the one
/// `match` of a public call, so everything `$body` calls is compiled per code.
macro_rules! with_code {
    ($any:expr, $c:ident => $body:expr) => {
        match $any {
            $crate::codec::AnyCode::F32(code) => {
                let $c: &$crate::codec::f32::F32Code = code;
                $body
            }
            $crate::codec::AnyCode::F16(code) => {
                let $c: &$crate::codec::compact::F16Code = code;
                $body
            }
            $crate::codec::AnyCode::U8(code) => {
                let $c: &$crate::codec::compact::U8Code = code;
                $body
            }
            $crate::codec::AnyCode::Scalar(code) => {
                let $c: &$crate::codec::scalar::ScalarCode = code;
                $body
            }
            $crate::codec::AnyCode::Binary(code) => {
                let $c: &$crate::codec::binary::BinaryCode = code;
                $body
            }
            $crate::codec::AnyCode::Product(code) => {
                let $c: &$crate::codec::pq::ProductCode = code;
                $body
            }
            $crate::codec::AnyCode::Turbo(code) => {
                let $c: &$crate::codec::turbo::TurboCode = code;
                $body
            }
            $crate::codec::AnyCode::MultiF32(code) => {
                let $c: &$crate::codec::multi::MultiCode<$crate::codec::f32::F32Code> = code;
                $body
            }
            $crate::codec::AnyCode::MultiF16(code) => {
                let $c: &$crate::codec::multi::MultiCode<$crate::codec::compact::F16Code> = code;
                $body
            }
            $crate::codec::AnyCode::MultiU8(code) => {
                let $c: &$crate::codec::multi::MultiCode<$crate::codec::compact::U8Code> = code;
                $body
            }
            $crate::codec::AnyCode::MultiScalar(code) => {
                let $c: &$crate::codec::multi::MultiCode<$crate::codec::scalar::ScalarCode> = code;
                $body
            }
            $crate::codec::AnyCode::MultiBinary(code) => {
                let $c: &$crate::codec::multi::MultiCode<$crate::codec::binary::BinaryCode> = code;
                $body
            }
            $crate::codec::AnyCode::MultiProduct(code) => {
                let $c: &$crate::codec::multi::MultiCode<$crate::codec::pq::ProductCode> = code;
                $body
            }
            $crate::codec::AnyCode::MultiTurbo(code) => {
                let $c: &$crate::codec::multi::MultiCode<$crate::codec::turbo::TurboCode> = code;
                $body
            }
        }
    };
}
pub(crate) use with_code;

impl AnyCode {
    /// The code that keeps whole vectors in `precision`.
    pub(crate) fn whole(dim: usize, metric: Metric, precision: Precision) -> Self {
        match precision {
            Precision::F32 => AnyCode::F32(Arc::new(F32Code::new(dim, metric))),
            Precision::F16 => AnyCode::F16(Arc::new(F16Code::new(dim, metric))),
            Precision::U8 => AnyCode::U8(Arc::new(U8Code::new(dim, metric))),
        }
    }

    /// The element type of a code that keeps whole vectors (or multivector rows); None for a
    /// quantized one.
    pub(crate) fn precision(&self) -> Option<Precision> {
        match self {
            AnyCode::F32(_) | AnyCode::MultiF32(_) => Some(Precision::F32),
            AnyCode::F16(_) | AnyCode::MultiF16(_) => Some(Precision::F16),
            AnyCode::U8(_) | AnyCode::MultiU8(_) => Some(Precision::U8),
            _ => None,
        }
    }

    /// Whether this is a multivector code.
    pub(crate) fn is_multi(&self) -> bool {
        matches!(
            self,
            AnyCode::MultiF32(_)
                | AnyCode::MultiF16(_)
                | AnyCode::MultiU8(_)
                | AnyCode::MultiScalar(_)
                | AnyCode::MultiBinary(_)
                | AnyCode::MultiProduct(_)
                | AnyCode::MultiTurbo(_)
        )
    }

    /// A multivector code whose rows are kept in `row`, a plain code (whole or trained); an
    /// error for a multivector code.
    pub(crate) fn multi(row: AnyCode) -> Result<Self> {
        fn wrap<R: Code>(row: Arc<R>) -> Arc<MultiCode<R>> {
            Arc::new(MultiCode::new(row))
        }
        Ok(match row {
            AnyCode::F32(r) => AnyCode::MultiF32(wrap(r)),
            AnyCode::F16(r) => AnyCode::MultiF16(wrap(r)),
            AnyCode::U8(r) => AnyCode::MultiU8(wrap(r)),
            AnyCode::Scalar(r) => AnyCode::MultiScalar(wrap(r)),
            AnyCode::Binary(r) => AnyCode::MultiBinary(wrap(r)),
            AnyCode::Product(r) => AnyCode::MultiProduct(wrap(r)),
            AnyCode::Turbo(r) => AnyCode::MultiTurbo(wrap(r)),
            _ => return Err(Error::Params("a multivector's rows cannot be multivectors".into())),
        })
    }

    /// The concrete code inside, if it is a `C`.
    pub(crate) fn as_code<C: Code>(&self) -> Option<&C> {
        with_code!(self, c => (c as &dyn std::any::Any).downcast_ref::<C>())
    }

    /// An empty multivector code with this one's row code (a rebuild's fresh row store); a
    /// plain code is returned as it is.
    pub(crate) fn emptied(&self) -> Self {
        fn fresh<R: Code>(m: &MultiCode<R>) -> Arc<MultiCode<R>> {
            Arc::new(MultiCode::new(m.row_arc()))
        }
        match self {
            AnyCode::MultiF32(m) => AnyCode::MultiF32(fresh(m)),
            AnyCode::MultiF16(m) => AnyCode::MultiF16(fresh(m)),
            AnyCode::MultiU8(m) => AnyCode::MultiU8(fresh(m)),
            AnyCode::MultiScalar(m) => AnyCode::MultiScalar(fresh(m)),
            AnyCode::MultiBinary(m) => AnyCode::MultiBinary(fresh(m)),
            AnyCode::MultiProduct(m) => AnyCode::MultiProduct(fresh(m)),
            AnyCode::MultiTurbo(m) => AnyCode::MultiTurbo(fresh(m)),
            plain => plain.clone(),
        }
    }

    /// Trains the code `q` describes on `sample` (vectors of `dim` values, preprocessed as the
    /// graph expects them).
    pub(crate) fn train(dim: usize, metric: Metric, q: &Quantization, sample: &[&[f32]]) -> Result<Self> {
        if sample.is_empty() {
            return Err(Error::Params(
                "a quantized graph needs a sample of vectors to train on".into(),
            ));
        }
        if let Some(v) = sample.iter().find(|v| v.len() != dim) {
            return Err(Error::Dimension {
                got: v.len(),
                want: dim,
            });
        }
        if sample.iter().any(|v| v.iter().any(|x| !x.is_finite())) {
            return Err(Error::Params("the sample holds a value that is not finite".into()));
        }
        Ok(match *q {
            Quantization::Scalar { quantile } => {
                AnyCode::Scalar(Arc::new(ScalarCode::train(dim, metric, quantile, sample)?))
            }
            Quantization::Binary {
                encoding,
                query_encoding,
            } => AnyCode::Binary(Arc::new(BinaryCode::train(
                dim,
                metric,
                encoding,
                query_encoding,
                sample,
            )?)),
            Quantization::Product { compression } => {
                AnyCode::Product(Arc::new(ProductCode::train(metric, dim, compression, sample)?))
            }
            Quantization::Turbo { bits } => AnyCode::Turbo(Arc::new(TurboCode::new(metric, dim, bits)?)),
        })
    }

    pub(crate) fn kind(&self) -> u8 {
        with_code!(self, c => kind_of(c))
    }

    pub(crate) fn quantization(&self) -> Option<Quantization> {
        with_code!(self, c => c.quantization())
    }

    pub(crate) fn words(&self) -> usize {
        with_code!(self, c => c.words())
    }

    pub(crate) fn params_memory(&self) -> usize {
        with_code!(self, c => c.params_memory())
    }

    pub(crate) fn write_params(&self, out: &mut Vec<u8>) {
        with_code!(self, c => c.write_params(out))
    }

    /// The code of kind `kind` from its parameter block.
    pub(crate) fn read(kind: u8, dim: usize, metric: Metric, bytes: &[u8]) -> Result<Self> {
        fn read<C: StoredCode>(dim: usize, metric: Metric, bytes: &[u8]) -> Result<Arc<C>> {
            let code = C::read_params(dim, metric, bytes)?;
            if code.dim() != dim || code.metric() != metric || code.words() == 0 {
                return Err(Error::Format("the code does not match the index".into()));
            }
            Ok(Arc::new(code))
        }
        Ok(match kind {
            F32Code::KIND => AnyCode::F32(read(dim, metric, bytes)?),
            F16Code::KIND => AnyCode::F16(read(dim, metric, bytes)?),
            U8Code::KIND => AnyCode::U8(read(dim, metric, bytes)?),
            ScalarCode::KIND => AnyCode::Scalar(read(dim, metric, bytes)?),
            BinaryCode::KIND => AnyCode::Binary(read(dim, metric, bytes)?),
            ProductCode::KIND => AnyCode::Product(read(dim, metric, bytes)?),
            TurboCode::KIND => AnyCode::Turbo(read(dim, metric, bytes)?),
            MultiCode::<F32Code>::KIND => AnyCode::MultiF32(read(dim, metric, bytes)?),
            MultiCode::<F16Code>::KIND => AnyCode::MultiF16(read(dim, metric, bytes)?),
            MultiCode::<U8Code>::KIND => AnyCode::MultiU8(read(dim, metric, bytes)?),
            MultiCode::<ScalarCode>::KIND => AnyCode::MultiScalar(read(dim, metric, bytes)?),
            MultiCode::<BinaryCode>::KIND => AnyCode::MultiBinary(read(dim, metric, bytes)?),
            MultiCode::<ProductCode>::KIND => AnyCode::MultiProduct(read(dim, metric, bytes)?),
            MultiCode::<TurboCode>::KIND => AnyCode::MultiTurbo(read(dim, metric, bytes)?),
            _ => return Err(Error::Format(format!("unknown code kind {kind}"))),
        })
    }
}

fn kind_of<C: StoredCode>(_: &C) -> u8 {
    C::KIND
}

impl StoredCode for F32Code {
    const KIND: u8 = 0;

    fn quantization(&self) -> Option<Quantization> {
        None
    }

    fn write_params(&self, _: &mut Vec<u8>) {}

    fn read_params(dim: usize, metric: Metric, bytes: &[u8]) -> Result<Self> {
        ParamReader::new(bytes).finish()?;
        Ok(F32Code::new(dim, metric))
    }
}

impl StoredCode for ProductCode {
    const KIND: u8 = 3;

    fn quantization(&self) -> Option<Quantization> {
        Some(Quantization::Product {
            compression: self.compression(),
        })
    }

    fn write_params(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }

    fn read_params(_dim: usize, _metric: Metric, bytes: &[u8]) -> Result<Self> {
        // The block names its own dimension and metric; `AnyCode::read` checks they match.
        ProductCode::from_bytes(bytes)
    }
}

impl StoredCode for TurboCode {
    const KIND: u8 = 4;

    fn quantization(&self) -> Option<Quantization> {
        Some(Quantization::Turbo { bits: self.bits() })
    }

    fn write_params(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }

    fn read_params(_dim: usize, _metric: Metric, bytes: &[u8]) -> Result<Self> {
        TurboCode::from_bytes(bytes)
    }
}

/// Little-endian parameter blocks.
pub(crate) struct ParamWriter<'a>(pub &'a mut Vec<u8>);

impl ParamWriter<'_> {
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn f32(&mut self, v: f32) -> &mut Self {
        self.u32(v.to_bits())
    }
}

pub(crate) struct ParamReader<'a> {
    bytes: &'a [u8],
}

impl<'a> ParamReader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        ParamReader { bytes }
    }

    /// The next `n` bytes as they are.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        self.take(n)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(Error::Format("the code's parameters are cut short".into()));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A finite f32.
    pub fn f32(&mut self) -> Result<f32> {
        let v = f32::from_bits(self.u32()?);
        if v.is_finite() {
            Ok(v)
        } else {
            Err(Error::Format("a code parameter is not finite".into()))
        }
    }

    /// Errs if bytes are left over.
    pub fn finish(self) -> Result<()> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(Error::Format("the code's parameters have trailing bytes".into()))
        }
    }
}
