// What the console reads from the API's own OpenAPI document: the job settings' defaults (shown as placeholders, so
// that an untouched field sends nothing and the server's default applies) and the label file formats offered.
import { getJson } from "./api.js";

let documentPromise = null;

function openapi() {
  documentPromise ??= getJson("openapi.json").catch(() => ({}));
  return documentPromise;
}

/** {field: default} of a components.schemas entry (e.g. "TrainJobSpec"); {} when the document lacks it. */
export async function defaultsOf(schemaName) {
  const schema = (await openapi()).components?.schemas?.[schemaName];
  const out = {};
  for (const [name, prop] of Object.entries(schema?.properties || {})) if (prop.default !== undefined) out[name] = prop.default;
  return out;
}

/** Put each field's server default in its placeholder ("default 0.1"), for the named inputs of `form`. */
export async function showDefaults(form, schemaName) {
  const defaults = await defaultsOf(schemaName);
  for (const input of form.querySelectorAll("input[type=number], input[type=text]")) {
    const value = defaults[input.name];
    if (value !== undefined && value !== null && !input.placeholder) input.placeholder = `default ${shown(value)}`;
  }
}

/** Small numbers in exponent form (a learning rate of 0.00005 reads "5e-5" and fits its field). */
const shown = (value) => (typeof value === "number" && value !== 0 && Math.abs(value) < 1e-3 ? value.toExponential() : value);

/** The formats GET /jobs/{id}/labels offers for label jobs (the `format` query enum), in the document's order. */
export async function labelFormats() {
  const params = (await openapi()).paths?.["/jobs/{job_id}/labels"]?.get?.parameters || [];
  const format = params.find((p) => p.name === "format");
  return format?.schema?.enum || ["jsonl", "parquet"];
}
