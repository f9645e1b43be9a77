//! Validators behind the `ModelCompiler` / `PayloadValidator` ports.

pub mod json_schema;

use std::sync::Arc;

use crate::domain::catalog::CatalogEntry;
use crate::domain::model::ArtifactKind;
use crate::ports::{ArtifactSet, CompileError, CompiledModel, ModelCompiler, PayloadValidator, TargetClass};

/// The default compiler: every validator this build knows, each compiled when its artifact exists.
#[derive(Debug, Default, Clone)]
pub struct StandardCompiler;

impl ModelCompiler for StandardCompiler {
    fn compile(&self, entry: &CatalogEntry, artifacts: &ArtifactSet) -> Result<CompiledModel, CompileError> {
        let mut validators: Vec<Arc<dyn PayloadValidator>> = Vec::new();
        let mut warnings = Vec::new();
        let target_class = TargetClass {
            name: entry.root_class.clone(),
            chosen_by: if entry.root_class.is_some() {
                "catalog_root_class".into()
            } else {
                "schema_root".into()
            },
        };
        if let Some(schema) = artifacts.get(&ArtifactKind::Schema) {
            let compiled = json_schema::JsonSchemaValidator::compile(&schema.bytes, entry.root_class.as_deref())?;
            validators.push(Arc::new(compiled));
        }
        if artifacts.contains_key(&ArtifactKind::Shacl) {
            warnings.push("SHACL shapes are served but not yet enforced by this build".to_string());
        }
        Ok(CompiledModel {
            validators,
            target_class,
            warnings,
        })
    }
}
