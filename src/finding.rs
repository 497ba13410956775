//! Findings are data, not errors: what the parser, the planner and the linter tell the user
//! about a schema or a change. Every code is kebab-case and has a page in the book.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Blocks: `plan` and `lint` exit 1.
    Error,
    Warning,
}

/// Where in the input a finding or error points. Lines and columns are 1-based.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Span {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// Declares [`FindingCode`] from `Variant = "code"` pairs, so the spelling of each code is
/// written once and `as_str`, parsing and [`FindingCode::ALL`] cannot disagree.
macro_rules! finding_codes {
    ($($(#[$doc:meta])* $variant:ident = $code:literal,)*) => {
        /// Every finding code seqmig reports. Serialised, displayed and compared as its
        /// kebab-case spelling, so plans, JSON and SARIF read exactly as before the enum.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum FindingCode {
            $($(#[$doc])* $variant,)*
        }

        impl FindingCode {
            /// Every code, plan findings first, then the linter's in registry order. A test
            /// checks each has its book page.
            pub const ALL: &'static [FindingCode] = &[$(FindingCode::$variant,)*];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $(FindingCode::$variant => $code,)*
                }
            }
        }

        impl std::str::FromStr for FindingCode {
            type Err = UnknownCode;

            fn from_str(s: &str) -> Result<Self, UnknownCode> {
                match s {
                    $($code => Ok(FindingCode::$variant),)*
                    _ => Err(UnknownCode(s.to_string())),
                }
            }
        }
    };
}

finding_codes! {
    // ── the loader and the planner (`book/src/findings/<code>.md`) ──
    AmbiguousRename = "ambiguous-rename",
    BackfillFiresTrigger = "backfill-fires-trigger",
    BlockingConstraint = "blocking-constraint",
    DataStatementIgnored = "data-statement-ignored",
    DefaultPartitionScan = "default-partition-scan",
    DependencyCycle = "dependency-cycle",
    DetachReferencedPartition = "detach-referenced-partition",
    DropOfMissingObject = "drop-of-missing-object",
    DropWithoutFill = "drop-without-fill",
    ExtensionDrop = "extension-drop",
    FkWithoutIndex = "fk-without-index",
    GeneratedColumnDependency = "generated-column-dependency",
    IdentityTypeChange = "identity-type-change",
    InflightOverlap = "inflight-overlap",
    InflightSchemaUnknown = "inflight-schema-unknown",
    ManualStep = "manual-step",
    MissingDown = "missing-down",
    MissingFill = "missing-fill",
    MissingTransform = "missing-transform",
    NarrowForeignKey = "narrow-foreign-key",
    NarrowSequence = "narrow-sequence",
    OldTypeLimit = "old-type-limit",
    OneWayNotAcknowledged = "one-way-not-acknowledged",
    OpaqueChangesModelled = "opaque-changes-modelled",
    PartitionAttachWithParentChanges = "partition-attach-with-parent-changes",
    PartitionKeyNotInUnique = "partition-key-not-in-unique",
    PhaseConflict = "phase-conflict",
    SeqmigPrerequisite = "seqmig-prerequisite",
    TableRewrite = "table-rewrite",
    UnparsedStatement = "unparsed-statement",
    UnsupportedChange = "unsupported-change",
    UnusedHint = "unused-hint",
    /// Retired (issue 17.4): no longer reported, kept so that plans an older seqmig stored
    /// still read.
    VolatileDefault = "volatile-default",
    // ── the linter, in `lint::rules::RULES` order (`book/src/lints/<code>.md`) ──
    DropDatabase = "drop-database",
    DropSchema = "drop-schema",
    DropTable = "drop-table",
    DropColumn = "drop-column",
    TruncateCascade = "truncate-cascade",
    DropForeignKey = "drop-foreign-key",
    RenameTable = "rename-table",
    RenameColumn = "rename-column",
    RenameSchema = "rename-schema",
    RenameEnumValue = "rename-enum-value",
    ChangeColumnType = "change-column-type",
    AddRequiredColumn = "add-required-column",
    DropNotNull = "drop-not-null",
    ChangeColumnDefault = "change-column-default",
    AddJsonColumn = "add-json-column",
    CreateIndexNonConcurrently = "create-index-non-concurrently",
    DropIndexNonConcurrently = "drop-index-non-concurrently",
    ReindexNonConcurrently = "reindex-non-concurrently",
    ConcurrentlyInTransaction = "concurrently-in-transaction",
    AddUniqueWithoutIndex = "add-unique-without-index",
    PrimaryKeyNullableColumn = "primary-key-nullable-column",
    ExclusionConstraint = "exclusion-constraint",
    CheckWithoutNotValid = "check-without-not-valid",
    ForeignKeyWithoutNotValid = "foreign-key-without-not-valid",
    ValidateInSameTransaction = "validate-in-same-transaction",
    SetNotNull = "set-not-null",
    AddColumnVolatileDefault = "add-column-volatile-default",
    AddColumnSerial = "add-column-serial",
    AddColumnIdentity = "add-column-identity",
    AddColumnGeneratedStored = "add-column-generated-stored",
    SetTablePersistence = "set-table-persistence",
    SetTablespace = "set-tablespace",
    VacuumFull = "vacuum-full",
    Cluster = "cluster",
    DetachPartitionNonConcurrently = "detach-partition-non-concurrently",
    ConcurrentIndexOnPartitionedTable = "concurrent-index-on-partitioned-table",
    AttachPartitionWithoutCheck = "attach-partition-without-check",
    AccessExclusiveHeld = "access-exclusive-held",
    DomainConstraint = "domain-constraint",
    MissingLockTimeout = "missing-lock-timeout",
    MissingStatementTimeout = "missing-statement-timeout",
    UnclosedTransaction = "unclosed-transaction",
    NestedTransaction = "nested-transaction",
    IdentifierTooLong = "identifier-too-long",
    ForeignKeyWithoutIndex = "foreign-key-without-index",
    UnbatchedDml = "unbatched-dml",
    PreferBigint = "prefer-bigint",
    PreferIdentity = "prefer-identity",
    PreferText = "prefer-text",
    PreferTimestamptz = "prefer-timestamptz",
    PreferJsonb = "prefer-jsonb",
}

/// A code no [`FindingCode`] spells; carries what was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown finding code '{0}' (written by a newer seqmig? this one knows every code it can write)")]
pub struct UnknownCode(pub String);

impl fmt::Display for FindingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Ordered by spelling, as the strings were, so sorted output keeps its order.
impl Ord for FindingCode {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for FindingCode {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Serialize for FindingCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FindingCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Kebab-case code, such as `ambiguous-rename`.
    pub code: FindingCode,
    pub severity: Severity,
    /// The object concerned, in SQL spelling (`public.users.email`).
    pub object: String,
    /// The consequence, as a lowercase phrase.
    pub message: String,
    /// The remedy.
    pub help: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub span: Option<Span>,
}

impl Finding {
    pub fn new(
        code: FindingCode,
        severity: Severity,
        object: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Finding {
            code,
            severity,
            object: object.into(),
            message: message.into(),
            help: String::new(),
            span: None,
        }
    }

    pub fn error(code: FindingCode, object: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(code, Severity::Error, object, message)
    }

    pub fn warning(code: FindingCode, object: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(code, Severity::Warning, object, message)
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = help.into();
        self
    }

    pub fn with_span(mut self, span: Span) -> Self {
        self.span = Some(span);
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_kebab_case_and_round_trip() {
        let mut seen = std::collections::BTreeSet::new();
        for &c in FindingCode::ALL {
            assert!(seen.insert(c.as_str()), "duplicate code {c}");
            assert!(c.as_str().chars().all(|x| x.is_ascii_lowercase() || x == '-'), "{c}");
            assert_eq!(c.as_str().parse::<FindingCode>(), Ok(c));
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{c}\""));
            assert_eq!(serde_json::from_str::<FindingCode>(&format!("\"{c}\"")).unwrap(), c);
        }
        let err = serde_json::from_str::<FindingCode>("\"no-such\"").unwrap_err();
        assert!(err.to_string().contains("unknown finding code 'no-such'"), "{err}");
    }
}
