//! Which ORM issued a SQL call, read from the instrumentation scope name and
//! the `code.*` attributes, so that an N+1 finding can say how to fix it in
//! that ORM's own terms (and so that sanitized statements can still be
//! recognized as an ORM loop).

use detector_api::{IoKind, SpanView};

/// An ORM (or data-access framework) known to cause N+1 queries through lazy
/// loading, with a specific cure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Framework {
    /// Hibernate, and JPA in general (Spring Data JPA).
    Hibernate,
    /// Entity Framework Core.
    EfCore,
    /// The Django ORM.
    Django,
    /// SQLAlchemy.
    SqlAlchemy,
    /// Ruby on Rails' ActiveRecord.
    ActiveRecord,
    /// GORM (Go).
    Gorm,
    /// Prisma (Node.js).
    Prisma,
    /// Sequelize (Node.js).
    Sequelize,
    /// TypeORM (Node.js).
    TypeOrm,
    /// Doctrine ORM (PHP).
    Doctrine,
    /// Laravel's Eloquent.
    Eloquent,
    /// Diesel (Rust).
    Diesel,
    /// SeaORM (Rust).
    SeaOrm,
    /// Ecto (Elixir).
    Ecto,
}

/// Words (lowercase, without `-`, `_` and trailing version digits) that name
/// a framework when they appear as a whole word of a scope name, namespace
/// or file path. Whole words only: `ecto` must not match `collector`.
const WORDS: &[(&str, Framework)] = &[
    ("hibernate", Framework::Hibernate),
    ("jpa", Framework::Hibernate),
    ("entityframeworkcore", Framework::EfCore),
    ("entityframework", Framework::EfCore),
    ("efcore", Framework::EfCore),
    ("django", Framework::Django),
    ("sqlalchemy", Framework::SqlAlchemy),
    ("activerecord", Framework::ActiveRecord),
    ("gorm", Framework::Gorm),
    ("prisma", Framework::Prisma),
    ("sequelize", Framework::Sequelize),
    ("typeorm", Framework::TypeOrm),
    ("doctrine", Framework::Doctrine),
    ("eloquent", Framework::Eloquent),
    ("laravel", Framework::Eloquent),
    ("diesel", Framework::Diesel),
    ("seaorm", Framework::SeaOrm),
    ("ecto", Framework::Ecto),
];

impl Framework {
    /// The stable lowercase name used in a finding's `extra.framework`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Framework::Hibernate => "hibernate",
            Framework::EfCore => "ef_core",
            Framework::Django => "django",
            Framework::SqlAlchemy => "sqlalchemy",
            Framework::ActiveRecord => "active_record",
            Framework::Gorm => "gorm",
            Framework::Prisma => "prisma",
            Framework::Sequelize => "sequelize",
            Framework::TypeOrm => "typeorm",
            Framework::Doctrine => "doctrine",
            Framework::Eloquent => "eloquent",
            Framework::Diesel => "diesel",
            Framework::SeaOrm => "sea_orm",
            Framework::Ecto => "ecto",
        }
    }
}

/// The framework named by the span's instrumentation scope, else by its
/// `code.namespace`, else by its `code.filepath`. `io.opentelemetry.jdbc`,
/// `database/sql` drivers and other plain clients name no framework.
pub(crate) fn framework_of(span: &SpanView<'_>) -> Option<Framework> {
    [
        span.scope.as_str(),
        span.code.namespace.as_str(),
        span.code.filepath.as_str(),
    ]
    .into_iter()
    .find_map(framework_in)
}

/// The first framework word in `text`, scanning left to right.
fn framework_in(text: &str) -> Option<Framework> {
    if text.is_empty() {
        return None;
    }
    // Split into path-like segments, then try each segment whole
    // (`active_record`, `sea-orm-0`, `hibernate-6`) and each of its `-`/`_`
    // parts (`opentelemetry-instrumentation-sequelize`).
    let is_sep = |c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_');
    for segment in text.split(is_sep).filter(|s| !s.is_empty()) {
        if let Some(fw) = lookup_word(segment.as_bytes()) {
            return Some(fw);
        }
        for part in segment.split(['-', '_']) {
            if let Some(fw) = lookup_word(part.as_bytes()) {
                return Some(fw);
            }
        }
    }
    None
}

/// The longest word of [`WORDS`].
const LONGEST_WORD: usize = 19;

/// Looks up the word made of `segment` (ASCII letters, digits, `-`, `_`)
/// without its `-` and `_`, lowercased, trailing version digits dropped
/// (`Hibernate-6` -> `hibernate`). Built in a stack buffer and matched
/// whole: N+1 groups ask for several spans and their ancestors, so this
/// runs for every segment of every scope, namespace and path they carry.
fn lookup_word(segment: &[u8]) -> Option<Framework> {
    let skip = |c: &u8| *c == b'-' || *c == b'_';
    // The word ends at the last letter (or other non-digit) kept.
    let end = segment
        .iter()
        .rposition(|c| !skip(c) && !c.is_ascii_digit())
        .map_or(0, |p| p + 1);
    let mut word = [0u8; LONGEST_WORD];
    let mut len = 0;
    for c in segment[..end].iter().filter(|c| !skip(c)) {
        *word.get_mut(len)? = c.to_ascii_lowercase();
        len += 1;
    }
    let word = &word[..len];
    WORDS
        .iter()
        .find(|(w, _)| w.as_bytes() == word)
        .map(|(_, fw)| *fw)
}

const GENERIC_SQL: &str = "Load these rows in one query (WHERE ... IN (...) or a JOIN), or eager-load the association, instead of querying once per item.";
const GENERIC_HTTP: &str = "Fetch these resources in one request (a batch or bulk endpoint), or prefetch and cache them, instead of calling once per item.";
const MESSAGING: &str = "Send these messages as one batch (the client's batch API, e.g. Kafka producer batching with linger.ms, SQS SendMessageBatch, or one message carrying the whole list) instead of one send per item.";
const GENERIC_OTHER: &str =
    "Replace the per-item calls with one batched call made before the loop.";

/// The fix for an N+1 of `kind`, in the words of framework `fw` when known.
pub(crate) fn n_plus_one_suggestion(fw: Option<Framework>, kind: IoKind) -> &'static str {
    match kind {
        IoKind::Sql => fw.map_or(GENERIC_SQL, sql_fix),
        IoKind::Http => GENERIC_HTTP,
        IoKind::Messaging => MESSAGING,
        IoKind::Rpc | IoKind::Other => GENERIC_OTHER,
    }
}

fn sql_fix(fw: Framework) -> &'static str {
    match fw {
        Framework::Hibernate => {
            "Hibernate/JPA: fetch the association with the parent query (`JOIN FETCH` in JPQL, or an `@EntityGraph` on the repository method), or let Hibernate batch the lazy loads with `@BatchSize` (or `hibernate.default_batch_fetch_size`)."
        }
        Framework::EfCore => {
            "EF Core: load the related entities with the parent query using `.Include()` / `.ThenInclude()` (add `.AsSplitQuery()` for large collections) instead of lazy-loading them one by one."
        }
        Framework::Django => {
            "Django: call `select_related()` (foreign key, one-to-one) or `prefetch_related()` (many-to-many, reverse relations) on the queryset the loop iterates."
        }
        Framework::SqlAlchemy => {
            "SQLAlchemy: add an eager loader to the query, `selectinload()` for collections or `joinedload()` for many-to-one, e.g. `select(Parent).options(selectinload(Parent.children))`."
        }
        Framework::ActiveRecord => {
            "ActiveRecord: eager-load the association with `includes` (or `preload` / `eager_load`) on the relation the loop iterates, e.g. `Post.includes(:comments)`; `strict_loading` catches regressions."
        }
        Framework::Gorm => {
            "GORM: load the association up front with `Preload`, e.g. `db.Preload(\"Orders\").Find(&users)` (or `Joins` for belongs-to / has-one) instead of querying per row."
        }
        Framework::Prisma => {
            "Prisma: fetch the relation with `include` (or a nested `select`) in the parent query, or collect the ids and run one `findMany({ where: { id: { in: ids } } })`."
        }
        Framework::Sequelize => {
            "Sequelize: eager-load the association with `include: [{ model: Child }]` in the parent `findAll` instead of calling the association getter per instance."
        }
        Framework::TypeOrm => {
            "TypeORM: load the relation with the parent query (`relations` in the find options, or `leftJoinAndSelect()` in the QueryBuilder) instead of per entity."
        }
        Framework::Doctrine => {
            "Doctrine: fetch-join the association in DQL or the QueryBuilder (`->leftJoin('p.items', 'i')->addSelect('i')`) instead of letting each proxy load lazily."
        }
        Framework::Eloquent => {
            "Laravel Eloquent: eager-load the relation with `with('relation')` on the query (or `load()` on a collection already fetched); `Model::preventLazyLoading()` catches regressions."
        }
        Framework::Diesel => {
            "Diesel: load the children of all parents in one query with `Child::belonging_to(&parents)`, then pair them with `grouped_by(&parents)`, instead of one query per parent."
        }
        Framework::SeaOrm => {
            "SeaORM: load the related rows in one go with `find_with_related()` or the loader API (`load_one()` / `load_many()`) instead of `find_related()` per model."
        }
        Framework::Ecto => {
            "Ecto: preload the association for the whole list with `Repo.preload/2` (or `preload:` in the query) instead of loading it per struct."
        }
    }
}

#[cfg(test)]
mod tests {
    use detector_api::testkit::{SpanSpec, TraceBuilder};

    use super::*;

    fn detect(scope: &str, namespace: &str, filepath: &str) -> Option<Framework> {
        let mut t = TraceBuilder::new();
        let mut spec = SpanSpec::sql("SELECT * FROM t WHERE id = ?", "").scope(scope);
        spec.code = ("f".into(), filepath.into(), namespace.into(), 0);
        t.root(spec);
        t.with_view(|v| framework_of(&v.spans()[0]))
    }

    #[test]
    fn longest_word_bounds_the_table() {
        let longest = WORDS.iter().map(|(w, _)| w.len()).max();
        assert_eq!(longest, Some(LONGEST_WORD));
        // Longer than every word: no match, no overflow.
        assert_eq!(lookup_word(b"entityframeworkcoreextra"), None);
        assert_eq!(
            lookup_word(b"Entity_Framework-Core-8"),
            Some(Framework::EfCore)
        );
    }

    #[test]
    fn scopes_name_their_framework() {
        use Framework::*;
        let table: &[(&str, Option<Framework>)] = &[
            ("io.opentelemetry.hibernate-6.0", Some(Hibernate)),
            ("io.opentelemetry.hibernate-4.0", Some(Hibernate)),
            ("io.opentelemetry.jdbc", None),
            (
                "OpenTelemetry.Instrumentation.EntityFrameworkCore",
                Some(EfCore),
            ),
            ("Microsoft.EntityFrameworkCore", Some(EfCore)),
            ("opentelemetry.instrumentation.django", Some(Django)),
            ("opentelemetry.instrumentation.sqlalchemy", Some(SqlAlchemy)),
            ("opentelemetry.instrumentation.psycopg2", None),
            ("active_record", Some(ActiveRecord)),
            (
                "OpenTelemetry::Instrumentation::ActiveRecord",
                Some(ActiveRecord),
            ),
            ("OpenTelemetry::Instrumentation::PG", None),
            ("gorm.io/gorm", Some(Gorm)),
            ("gorm.io/plugin/opentelemetry/tracing", Some(Gorm)),
            ("github.com/XSAM/otelsql", None),
            ("@prisma/instrumentation", Some(Prisma)),
            ("sequelize", Some(Sequelize)),
            ("opentelemetry-instrumentation-sequelize", Some(Sequelize)),
            ("@opentelemetry/instrumentation-pg", None),
            ("opentelemetry-instrumentation-typeorm", Some(TypeOrm)),
            ("io.opentelemetry.contrib.php.doctrine", Some(Doctrine)),
            ("io.opentelemetry.contrib.php.laravel", Some(Eloquent)),
            ("eloquent", Some(Eloquent)),
            ("diesel", Some(Diesel)),
            ("sea-orm", Some(SeaOrm)),
            ("sea_orm", Some(SeaOrm)),
            ("opentelemetry_ecto", Some(Ecto)),
            ("otelcol-collector", None),
            ("", None),
        ];
        for (scope, want) in table {
            assert_eq!(detect(scope, "", ""), *want, "scope {scope:?}");
        }
    }

    #[test]
    fn code_attributes_are_hints_when_the_scope_says_nothing() {
        use Framework::*;
        let ns: &[(&str, Framework)] = &[
            ("org.hibernate.internal.SessionImpl", Hibernate),
            ("org.springframework.data.jpa.repository", Hibernate),
            ("Microsoft.EntityFrameworkCore.Query", EfCore),
            ("django.db.models.query", Django),
            ("sqlalchemy.orm.loading", SqlAlchemy),
            ("ActiveRecord::Associations::Preloader", ActiveRecord),
            (r"Illuminate\Database\Eloquent\Builder", Eloquent),
            (r"Doctrine\ORM\UnitOfWork", Doctrine),
            ("diesel::query_dsl", Diesel),
            ("sea_orm::executor::select", SeaOrm),
        ];
        for (namespace, want) in ns {
            assert_eq!(detect("io.opentelemetry.jdbc", namespace, ""), Some(*want));
        }
        let paths: &[(&str, Framework)] = &[
            (
                "/usr/lib/python3/site-packages/django/db/models/query.py",
                Django,
            ),
            (
                "/gems/activerecord-7.1.3/lib/active_record/relation.rb",
                ActiveRecord,
            ),
            (
                "/app/node_modules/@prisma/client/runtime/library.js",
                Prisma,
            ),
            ("/app/node_modules/sequelize/lib/model.js", Sequelize),
            ("/root/go/pkg/mod/gorm.io/gorm@v1.25.5/callbacks.go", Gorm),
            (
                "/cargo/registry/src/diesel-2.1.4/src/query_dsl/mod.rs",
                Diesel,
            ),
            (
                "/cargo/registry/src/sea-orm-0.12.15/src/executor/select.rs",
                SeaOrm,
            ),
        ];
        for (path, want) in paths {
            assert_eq!(detect("", "", path), Some(*want), "path {path}");
        }
        // A plain service namespace or path names nothing.
        assert_eq!(
            detect("", "com.acme.orders.OrderService", "src/orders.rs"),
            None
        );
        // The scope wins over hints.
        assert_eq!(
            detect("opentelemetry.instrumentation.sqlalchemy", "django.db", ""),
            Some(SqlAlchemy)
        );
    }

    #[test]
    fn suggestions_are_framework_specific() {
        use Framework::*;
        let expect: &[(Framework, &str)] = &[
            (Hibernate, "JOIN FETCH"),
            (Hibernate, "@EntityGraph"),
            (Hibernate, "@BatchSize"),
            (EfCore, ".Include()"),
            (Django, "select_related()"),
            (Django, "prefetch_related()"),
            (SqlAlchemy, "selectinload()"),
            (SqlAlchemy, "joinedload()"),
            (ActiveRecord, "includes"),
            (ActiveRecord, "preload"),
            (Gorm, "Preload"),
            (Prisma, "include"),
            (Prisma, "findMany"),
            (Sequelize, "include"),
            (TypeOrm, "leftJoinAndSelect"),
            (Doctrine, "addSelect"),
            (Eloquent, "with("),
            (Diesel, "belonging_to"),
            (Diesel, "grouped_by"),
            (SeaOrm, "find_with_related"),
            (Ecto, "Repo.preload"),
        ];
        for (fw, needle) in expect {
            let s = n_plus_one_suggestion(Some(*fw), IoKind::Sql);
            assert!(s.contains(needle), "{fw:?}: {s}");
            assert!(!fw.name().is_empty());
        }
        assert!(n_plus_one_suggestion(None, IoKind::Sql).contains("IN (...)"));
        assert!(n_plus_one_suggestion(Some(Django), IoKind::Http).contains("batch"));
        assert!(n_plus_one_suggestion(None, IoKind::Messaging).contains("batch"));
    }
}
