/**
 * Validates Kubernetes objects against the official CRD schemas kept in test/fixtures/k8s-schemas
 * (`<group>_<version>_<Kind>.json`). The schemas carry Kubernetes extensions (`x-kubernetes-*`,
 * `nullable`, `int32` formats) that plain JSON Schema does not know, hence `strict: false`.
 */
import { readFileSync } from "node:fs";
import { Ajv, type ValidateFunction } from "ajv";

const DIR = new URL("../../fixtures/k8s-schemas/", import.meta.url);
const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true });
const compiled = new Map<string, ValidateFunction>();

export function schemaFile(apiVersion: string, kind: string): string {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["core", apiVersion];
  return `${group}_${version}_${kind}.json`;
}

/**
 * The schema errors of `obj` (empty when valid). Throws when no schema fixture exists for its kind.
 * Generic so a test can hand it an object with fields the schema should reject.
 */
export function schemaErrors<T extends { apiVersion: string; kind: string }>(obj: T): string[] {
  const file = schemaFile(obj.apiVersion, obj.kind);
  let validate = compiled.get(file);
  if (!validate) {
    validate = ajv.compile(JSON.parse(readFileSync(new URL(file, DIR), "utf8")) as object);
    compiled.set(file, validate);
  }
  return validate(obj) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message ?? "invalid"}`);
}
