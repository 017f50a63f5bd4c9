//! Enums a user picks by name (on the command line or in a file), without the library
//! depending on an argument parser: each lists its values with their names and a line of
//! help, and the binary turns that list into its flags' possible values.

/// An enum chosen by name. Its names are its serde names, read from its `Serialize`
/// (see [`serde_name`]), so the flags, the files and the JSON spell each value one way.
pub trait Choice: Sized + Copy + PartialEq + serde::Serialize + 'static {
    /// Every value, with what it means.
    const CHOICES: &'static [(Self, &'static str)];

    /// The value's name.
    fn name(self) -> &'static str {
        serde_name(&self)
    }

    /// The value called `name`.
    fn from_name(name: &str) -> Option<Self> {
        Self::CHOICES
            .iter()
            .map(|(v, _)| *v)
            .find(|v| v.name() == name)
    }
}

/// A unit variant's serde name (`torn-txnlog-tail`), as `&'static str`: serde hands its
/// serializer the name as written by the derive. Anything but a unit variant has none
/// (`""`).
pub fn serde_name<T: serde::Serialize>(value: &T) -> &'static str {
    value.serialize(VariantName).unwrap_or("")
}

/// A serializer that only takes a unit variant, and gives its name.
struct VariantName;

#[derive(Debug)]
struct NotAUnitVariant;

impl std::fmt::Display for NotAUnitVariant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a unit variant")
    }
}

impl std::error::Error for NotAUnitVariant {}

impl serde::ser::Error for NotAUnitVariant {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        NotAUnitVariant
    }
}

type Never = serde::ser::Impossible<&'static str, NotAUnitVariant>;

/// The methods of [`VariantName`] that refuse what they are given.
macro_rules! refuse {
    ($($method:ident($($arg:ty),*) -> $ok:ty;)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<$ok, NotAUnitVariant> {
            Err(NotAUnitVariant)
        })*
    };
}

impl serde::Serializer for VariantName {
    type Ok = &'static str;
    type Error = NotAUnitVariant;
    type SerializeSeq = Never;
    type SerializeTuple = Never;
    type SerializeTupleStruct = Never;
    type SerializeTupleVariant = Never;
    type SerializeMap = Never;
    type SerializeStruct = Never;
    type SerializeStructVariant = Never;

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<&'static str, NotAUnitVariant> {
        Ok(variant)
    }

    fn serialize_some<T: serde::Serialize + ?Sized>(
        self,
        _: &T,
    ) -> Result<&'static str, NotAUnitVariant> {
        Err(NotAUnitVariant)
    }

    fn serialize_newtype_struct<T: serde::Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<&'static str, NotAUnitVariant> {
        Err(NotAUnitVariant)
    }

    fn serialize_newtype_variant<T: serde::Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<&'static str, NotAUnitVariant> {
        Err(NotAUnitVariant)
    }

    refuse! {
        serialize_bool(bool) -> &'static str;
        serialize_i8(i8) -> &'static str;
        serialize_i16(i16) -> &'static str;
        serialize_i32(i32) -> &'static str;
        serialize_i64(i64) -> &'static str;
        serialize_u8(u8) -> &'static str;
        serialize_u16(u16) -> &'static str;
        serialize_u32(u32) -> &'static str;
        serialize_u64(u64) -> &'static str;
        serialize_f32(f32) -> &'static str;
        serialize_f64(f64) -> &'static str;
        serialize_char(char) -> &'static str;
        serialize_str(&str) -> &'static str;
        serialize_bytes(&[u8]) -> &'static str;
        serialize_none() -> &'static str;
        serialize_unit() -> &'static str;
        serialize_unit_struct(&'static str) -> &'static str;
        serialize_seq(Option<usize>) -> Never;
        serialize_tuple(usize) -> Never;
        serialize_tuple_struct(&'static str, usize) -> Never;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Never;
        serialize_map(Option<usize>) -> Never;
        serialize_struct(&'static str, usize) -> Never;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Never;
    }
}

/// `Display` as the value's name (so a default prints as the user types it).
#[macro_export]
macro_rules! display_as_choice {
    ($t:ty) => {
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($crate::choice::Choice::name(*self))
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_unit_variant_has_a_name() {
        #[derive(serde::Serialize)]
        #[serde(rename_all = "kebab-case")]
        enum E {
            TornTxnlogTail,
            Wrapped(u8),
        }
        assert_eq!(serde_name(&E::TornTxnlogTail), "torn-txnlog-tail");
        assert_eq!(serde_name(&E::Wrapped(1)), "");
        assert_eq!(serde_name(&"text"), "");
    }

    /// Every choice's names are distinct and round-trip.
    #[test]
    fn names_round_trip() {
        fn check<T: Choice + std::fmt::Debug>() {
            let mut names = Vec::new();
            for (v, help) in T::CHOICES {
                let name = v.name();
                assert!(!name.is_empty(), "{v:?} has a name");
                assert_eq!(T::from_name(name), Some(*v), "{name}");
                assert_eq!(crate::json_name(v), name, "{name} is its serde name");
                assert!(!help.is_empty(), "{name} has no help");
                names.push(name);
            }
            names.sort();
            names.dedup();
            assert_eq!(names.len(), T::CHOICES.len(), "names are distinct");
        }
        check::<crate::verify::Semantics>();
        check::<crate::formats::mapped::IoMode>();
        check::<crate::watch::Until>();
        check::<crate::driver::preset::PresetKind>();
        check::<crate::driver::run::OnViolation>();
        check::<crate::gen::sink::FaultKind>();
        check::<crate::demo::worker::InjectKind>();
    }
}
