//! Field errors completed by the spec ("Handling Field Errors"): the field that raised an error
//! is `null` and present; when its type is non-null, the `null` goes up to the nearest nullable
//! field or list item, and to `data` itself when there is none.
//!
//! async-graphql 7 does neither: it drops an errored field's key from its object (and an object
//! left with no keys becomes `null`), and lets a non-null field's error stop there. Strictly typed
//! clients (Apollo Kotlin and iOS codegen) fail on the missing key, and Apollo Client's
//! `errorPolicy: "all"` sees no data. This mends a response after execution, from its errors'
//! paths, the operation's selections and the schema's field types, so a response without errors
//! costs nothing.

use std::collections::HashMap;
use std::sync::LazyLock;

use async_graphql::parser::types::{
    BaseType, ExecutableDocument, OperationType, Selection, SelectionSet, ServiceDocument, Type, TypeKind,
    TypeSystemDefinition,
};
use async_graphql::{Name, PathSegment, Request, Response, Value, Variables};

/// The declared type of every field of every object and interface type, by type and field name.
struct FieldTypes {
    fields: HashMap<(String, String), Type>,
}

impl FieldTypes {
    /// From the SDL of the schema being served (several documents: the plain and the federation
    /// SDL each leave out fields the other has).
    fn from_sdl<'a>(documents: impl IntoIterator<Item = &'a str>) -> Self {
        let mut fields = HashMap::new();
        for sdl in documents {
            let document: ServiceDocument =
                async_graphql::parser::parse_schema(sdl).expect("the schema's own SDL parses");
            for definition in document.definitions {
                let TypeSystemDefinition::Type(definition) = definition else { continue };
                let definition = definition.node;
                let defined = match definition.kind {
                    TypeKind::Object(object) => object.fields,
                    TypeKind::Interface(interface) => interface.fields,
                    _ => continue,
                };
                for field in defined {
                    let key = (definition.name.node.to_string(), field.node.name.node.to_string());
                    fields.insert(key, field.node.ty.node);
                }
            }
        }
        FieldTypes { fields }
    }

    /// The served schema's: it does not depend on configuration, so it is read once.
    fn served() -> &'static FieldTypes {
        static SERVED: LazyLock<FieldTypes> =
            LazyLock::new(|| FieldTypes::from_sdl([super::sdl().as_str(), super::federation_sdl().as_str()]));
        &SERVED
    }

    fn of(&self, parent: &str, field: &str) -> Option<&Type> {
        self.fields.get(&(parent.to_owned(), field.to_owned()))
    }
}

/// What is kept of a request beside its execution, to mend the response afterwards: its text
/// (parsed again only when the response has field errors), which operation ran, and its
/// variables (a complexity refusal is measured again with them).
pub struct RequestText {
    pub(super) query: String,
    pub(super) operation_name: Option<String>,
    pub(super) variables: Variables,
}

impl RequestText {
    /// Takes the query text out of `request` when its parsed document is already kept for
    /// execution (the gate parsed it), so nothing is copied; copies it otherwise.
    pub fn take_from(request: &mut Request) -> Self {
        let query = if request.parsed_query().is_ok() {
            std::mem::take(&mut request.query)
        } else {
            request.query.clone()
        };
        Self::with_query(query, request)
    }

    /// Copies what is needed, for a request that is executed as a stream of responses.
    pub fn copied_from(request: &Request) -> Self {
        Self::with_query(request.query.clone(), request)
    }

    fn with_query(query: String, request: &Request) -> Self {
        RequestText {
            query,
            operation_name: request.operation_name.clone(),
            variables: request.variables.clone(),
        }
    }
}

/// Completes `response`'s data for its field errors; a response without any is untouched.
pub fn complete_field_errors(response: &mut Response, request: &RequestText) {
    complete_with(response, request, FieldTypes::served())
}

fn complete_with(response: &mut Response, request: &RequestText, types: &FieldTypes) {
    if response.errors.iter().all(|error| error.path.is_empty()) {
        return;
    }
    let Ok(document) = super::parser::parse_query(&request.query) else { return };
    let Some((_, operation)) = super::operation_of(&document, request.operation_name.as_deref()) else {
        return;
    };
    let root = match operation.node.ty {
        OperationType::Query => "Query",
        OperationType::Mutation => "Mutation",
        OperationType::Subscription => "Subscription",
    };
    let selections = Selections { document: &document, types };
    let root_set = &operation.node.selection_set.node;
    // Where each error's null lands; the deepest first, so that a shallower null (from another
    // error) is not undone by filling in objects below it.
    let mut nulls: Vec<Option<Vec<PathSegment>>> = response
        .errors
        .iter()
        .filter(|error| !error.path.is_empty())
        .map(|error| selections.null_at(root, root_set, &error.path))
        .collect();
    nulls.sort_by_key(|null| std::cmp::Reverse(null.as_ref().map(Vec::len)));
    for null in nulls {
        match null {
            Some(path) => set_null(&mut response.data, &path),
            None => {
                response.data = Value::Null;
                return;
            }
        }
    }
}

struct Selections<'a> {
    document: &'a ExecutableDocument,
    types: &'a FieldTypes,
}

impl Selections<'_> {
    /// The path of the value that becomes `null` for an error at `path`: the errored field, or
    /// its nearest nullable ancestor (field or list item); `None` when that is `data` itself.
    fn null_at(&self, root: &str, root_set: &SelectionSet, path: &[PathSegment]) -> Option<Vec<PathSegment>> {
        // Whether each step of the path holds a nullable value.
        let mut nullable = Vec::with_capacity(path.len());
        let (mut parent, mut sets) = (root.to_owned(), vec![root_set]);
        let mut ty: Option<Type> = None;
        for segment in path {
            match segment {
                PathSegment::Field(key) => {
                    let (field, condition, next_sets) = self.field(&sets, key);
                    let declared = field.and_then(|field| {
                        condition
                            .and_then(|condition| self.types.of(condition, field))
                            .or_else(|| self.types.of(&parent, field))
                    });
                    ty = declared.cloned();
                    sets = next_sets;
                }
                PathSegment::Index(_) => {
                    ty = match ty.map(|ty| ty.base) {
                        Some(BaseType::List(item)) => Some(*item),
                        _ => None,
                    };
                }
            }
            // A field this cannot type (none should exist) is taken as nullable: only it is null.
            nullable.push(ty.as_ref().is_none_or(|ty| ty.nullable));
            if let Some(Type { base: BaseType::Named(name), .. }) = &ty {
                parent = name.to_string();
            }
        }
        let last_nullable = nullable.iter().rposition(|nullable| *nullable)?;
        Some(path[..=last_nullable].to_vec())
    }

    /// The field a response key selects in `sets` (fragments included): its name, the type
    /// condition of the fragment it was found in, and its own selection sets (merged).
    fn field<'s>(
        &'s self,
        sets: &[&'s SelectionSet],
        key: &str,
    ) -> (Option<&'s str>, Option<&'s str>, Vec<&'s SelectionSet>) {
        let mut found = (None, None, Vec::new());
        for set in sets {
            self.collect(set, key, None, &mut found);
        }
        found
    }

    fn collect<'s>(
        &'s self,
        set: &'s SelectionSet,
        key: &str,
        condition: Option<&'s str>,
        found: &mut (Option<&'s str>, Option<&'s str>, Vec<&'s SelectionSet>),
    ) {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) if field.node.response_key().node == key => {
                    if found.0.is_none() {
                        found.0 = Some(field.node.name.node.as_str());
                        found.1 = condition;
                    }
                    found.2.push(&field.node.selection_set.node);
                }
                Selection::Field(_) => {}
                Selection::FragmentSpread(spread) => {
                    if let Some(fragment) = self.document.fragments.get(&spread.node.fragment_name.node) {
                        let on = fragment.node.type_condition.node.on.node.as_str();
                        self.collect(&fragment.node.selection_set.node, key, Some(on), found);
                    }
                }
                Selection::InlineFragment(fragment) => {
                    let on = fragment.node.type_condition.as_ref().map(|c| c.node.on.node.as_str());
                    self.collect(&fragment.node.selection_set.node, key, on.or(condition), found);
                }
            }
        }
    }
}

/// Sets the value at `path` to `null`, filling in the objects async-graphql left out on the
/// way (an object whose every field errored comes back as `null`). A list that is not there
/// cannot be filled in: the `null` then stops at the list's own place.
fn set_null(data: &mut Value, path: &[PathSegment]) {
    let mut at = data;
    for (depth, segment) in path.iter().enumerate() {
        let last = depth + 1 == path.len();
        match segment {
            PathSegment::Field(key) => {
                if matches!(at, Value::Null) {
                    *at = Value::Object(Default::default());
                }
                let Value::Object(object) = at else { return };
                let slot = object.entry(Name::new(key)).or_insert(Value::Null);
                if last {
                    *slot = Value::Null;
                    return;
                }
                at = slot;
            }
            PathSegment::Index(index) => {
                let Value::List(items) = at else {
                    *at = Value::Null;
                    return;
                };
                let Some(item) = items.get_mut(*index) else { return };
                if last {
                    *item = Value::Null;
                    return;
                }
                at = item;
            }
        }
    }
}
