//! Values crossing to and from either engine: [`Param`] binds a Rust value
//! (as SQLite's dynamic type, or as whatever type PostgreSQL inferred for
//! its placeholder), [`FromValue`] reads a column back.

use postgres::types::{FromSql, IsNull, ToSql, Type};

/// A value bound to a statement of either engine.
pub trait Param: rusqlite::ToSql {
    fn pg(&self) -> PgValue<'_>;
}

macro_rules! int_param {
    ($($t:ty),*) => {$(
        impl Param for $t {
            fn pg(&self) -> PgValue<'_> {
                match i64::try_from(*self) {
                    Ok(v) => PgValue::Int(v),
                    Err(_) => PgValue::OutOfRange,
                }
            }
        }
    )*};
}
int_param!(i64, i32, i16, u8, u16, u32);

impl Param for bool {
    fn pg(&self) -> PgValue<'_> {
        PgValue::Int(i64::from(*self))
    }
}

impl Param for f64 {
    fn pg(&self) -> PgValue<'_> {
        PgValue::Real(*self)
    }
}

impl Param for str {
    fn pg(&self) -> PgValue<'_> {
        PgValue::Text(self)
    }
}

impl Param for String {
    fn pg(&self) -> PgValue<'_> {
        PgValue::Text(self)
    }
}

impl Param for [u8] {
    fn pg(&self) -> PgValue<'_> {
        PgValue::Bytes(self)
    }
}

impl Param for Vec<u8> {
    fn pg(&self) -> PgValue<'_> {
        PgValue::Bytes(self)
    }
}

impl<T: Param> Param for Option<T> {
    fn pg(&self) -> PgValue<'_> {
        match self {
            Some(v) => v.pg(),
            None => PgValue::Null,
        }
    }
}

impl<T: Param + ?Sized> Param for &T {
    fn pg(&self) -> PgValue<'_> {
        (**self).pg()
    }
}

impl<T: Param + ?Sized> Param for Box<T> {
    fn pg(&self) -> PgValue<'_> {
        (**self).pg()
    }
}

/// A parameter on its way to PostgreSQL: written as whatever type the
/// server inferred for its placeholder.
#[derive(Debug)]
pub enum PgValue<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Bytes(&'a [u8]),
    OutOfRange,
}

type BoxError = Box<dyn std::error::Error + Sync + Send>;

impl ToSql for PgValue<'_> {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
        match self {
            Self::Null => Ok(IsNull::Yes),
            Self::OutOfRange => Err("an integer parameter is out of range".into()),
            Self::Int(v) => match *ty {
                Type::INT8 => v.to_sql(ty, out),
                Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
                Type::BOOL => (*v != 0).to_sql(ty, out),
                Type::FLOAT8 => (*v as f64).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    v.to_string().as_str().to_sql(ty, out)
                }
                _ => Err(format!("an integer cannot be bound as {ty}").into()),
            },
            Self::Real(v) => match *ty {
                Type::FLOAT8 => v.to_sql(ty, out),
                Type::FLOAT4 => (*v as f32).to_sql(ty, out),
                _ => Err(format!("a real cannot be bound as {ty}").into()),
            },
            Self::Text(s) => match *ty {
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    s.to_sql(ty, out)
                }
                Type::INT8 => s.parse::<i64>()?.to_sql(ty, out),
                Type::INT4 => s.parse::<i32>()?.to_sql(ty, out),
                Type::BYTEA => s.as_bytes().to_sql(ty, out),
                _ => Err(format!("text cannot be bound as {ty}").into()),
            },
            Self::Bytes(b) => match *ty {
                Type::BYTEA => b.to_sql(ty, out),
                Type::TEXT | Type::VARCHAR | Type::UNKNOWN => {
                    std::str::from_utf8(b)?.to_sql(ty, out)
                }
                _ => Err(format!("bytes cannot be bound as {ty}").into()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// A column read from PostgreSQL, whatever its type.
#[derive(Debug)]
pub enum PgAny {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Bytes(Vec<u8>),
}

impl PgAny {
    /// What it holds, without the value (which may be a secret).
    fn kind(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Int(_) => "an integer",
            Self::Real(_) => "a real",
            Self::Text(_) => "text",
            Self::Bytes(_) => "bytes",
        }
    }
}

impl<'a> FromSql<'a> for PgAny {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(match *ty {
            Type::INT8 => Self::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Self::Int(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT2 => Self::Int(i64::from(i16::from_sql(ty, raw)?)),
            Type::BOOL => Self::Int(i64::from(bool::from_sql(ty, raw)?)),
            Type::FLOAT8 => Self::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Self::Real(f64::from(f32::from_sql(ty, raw)?)),
            Type::BYTEA => Self::Bytes(Vec::<u8>::from_sql(ty, raw)?),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                Self::Text(String::from_sql(ty, raw)?)
            }
            _ => return Err(format!("a column of type {ty} cannot be read (cast it)").into()),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Self::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A Rust type read from a column of either engine.
pub trait FromValue: rusqlite::types::FromSql + Sized {
    fn from_pg(v: PgAny) -> Result<Self, String>;
}

macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_pg(v: PgAny) -> Result<Self, String> {
                match v {
                    PgAny::Int(i) => <$t>::try_from(i).map_err(|e| e.to_string()),
                    other => Err(format!("expected an integer, found {}", other.kind())),
                }
            }
        }
    )*};
}
int_value!(i64, i32, u8, u16, u32);

impl FromValue for bool {
    fn from_pg(v: PgAny) -> Result<Self, String> {
        match v {
            PgAny::Int(i) => Ok(i != 0),
            other => Err(format!("expected a boolean, found {}", other.kind())),
        }
    }
}

impl FromValue for f64 {
    fn from_pg(v: PgAny) -> Result<Self, String> {
        match v {
            PgAny::Real(f) => Ok(f),
            PgAny::Int(i) => Ok(i as f64),
            other => Err(format!("expected a number, found {}", other.kind())),
        }
    }
}

impl FromValue for String {
    fn from_pg(v: PgAny) -> Result<Self, String> {
        match v {
            PgAny::Text(s) => Ok(s),
            PgAny::Bytes(b) => String::from_utf8(b).map_err(|e| e.to_string()),
            other => Err(format!("expected text, found {}", other.kind())),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_pg(v: PgAny) -> Result<Self, String> {
        match v {
            PgAny::Bytes(b) => Ok(b),
            PgAny::Text(s) => Ok(s.into_bytes()),
            other => Err(format!("expected bytes, found {}", other.kind())),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_pg(v: PgAny) -> Result<Self, String> {
        match v {
            PgAny::Null => Ok(None),
            v => T::from_pg(v).map(Some),
        }
    }
}
