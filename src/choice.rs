//! Enums a user picks by name (on the command line or in a file), without the library
//! depending on an argument parser: each lists its values with their names and a line of
//! help, and the binary turns that list into its flags' possible values.

/// An enum chosen by name. Its names are its serde names (a test holds every table to
/// that, so the flags, the files and the JSON spell each value one way).
pub trait Choice: Sized + Copy + PartialEq + serde::Serialize + 'static {
    /// Every value, with its name and what it means.
    const CHOICES: &'static [(Self, &'static str, &'static str)];

    /// The value's name.
    fn name(self) -> &'static str {
        Self::CHOICES
            .iter()
            .find(|(v, _, _)| *v == self)
            .map_or("", |(_, name, _)| name)
    }

    /// The value called `name`.
    fn from_name(name: &str) -> Option<Self> {
        Self::CHOICES
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(v, _, _)| *v)
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

    /// Every choice's names are distinct and round-trip.
    #[test]
    fn names_round_trip() {
        fn check<T: Choice + std::fmt::Debug>() {
            for (v, name, help) in T::CHOICES {
                assert_eq!(T::from_name(name), Some(*v), "{name}");
                assert_eq!(crate::json_name(v), *name, "{name} is its serde name");
                assert_eq!(v.name(), *name);
                assert!(!help.is_empty(), "{name} has no help");
            }
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
