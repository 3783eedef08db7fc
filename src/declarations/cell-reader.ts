// Reads a cell folder's files for the loader: YAML with line numbers, JSON Schema validation (ajv strict), and
// the problems found, each with its file, JSON pointer and line. It never throws for bad content.

import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { LineCounter, parseDocument, type Document } from 'yaml';
import type { DeclarationProblem } from '../core/problems.js';
import { DECLARATION_VALIDATORS } from '../generated/declaration-validators.js';

// Compiled at build time (scripts/compile-schemas.ts, options there): start-up neither loads ajv's compiler nor
// compiles these large schemas, which was most of the time to ready.
export const validators = {
  cell: DECLARATION_VALIDATORS.cell as ValidateFunction,
  device: DECLARATION_VALIDATORS.device as ValidateFunction,
  agents: DECLARATION_VALIDATORS.agents as ValidateFunction,
};

export interface ParsedYaml {
  readonly file: string;
  readonly value: unknown;
  readonly doc: Document;
  readonly lines: LineCounter;
}

export class CellReader {
  readonly problems: DeclarationProblem[] = [];
  /** Every file read, for the content digest: relative path -> sha256 of its bytes. */
  readonly fileDigests = new Map<string, string>();

  constructor(readonly directory: string) {}

  readText(relativePath: string): string | undefined {
    const absolute = join(this.directory, relativePath);
    try {
      const bytes = readFileSync(absolute);
      this.fileDigests.set(relativePath, createHash('sha256').update(bytes).digest('hex'));
      return bytes.toString('utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      this.problem(relativePath, '', code === 'ENOENT' ? 'file not found' : `cannot read: ${(error as Error).message}`);
      return undefined;
    }
  }

  problem(file: string, path: string, message: string, line?: number): void {
    this.problems.push(line === undefined ? { file, path, message } : { file, path, message, line });
  }

  readYaml(relativePath: string, validate: ValidateFunction): ParsedYaml | undefined {
    const text = this.readText(relativePath);
    if (text === undefined) return undefined;
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false, strict: true });
    if (doc.errors.length > 0) {
      for (const error of doc.errors) {
        this.problem(relativePath, '', `YAML: ${error.message.split('\n')[0] ?? error.code}`, lines.linePos(error.pos[0]).line);
      }
      return undefined;
    }
    let value: unknown;
    try {
      // Aliases and anchors are refused: a bound that silently equals another is hard to review.
      value = doc.toJS({ maxAliasCount: 0 });
    } catch (error) {
      this.problem(relativePath, '', `YAML: ${(error as Error).message} (anchors and aliases are not allowed; write each value out)`);
      return undefined;
    }
    const parsed: ParsedYaml = { file: relativePath, value, doc, lines };
    if (!validate(value)) {
      for (const error of compactErrors(validate.errors ?? [])) this.schemaProblem(parsed, error);
      return undefined;
    }
    return parsed;
  }

  private schemaProblem(parsed: ParsedYaml, error: ErrorObject): void {
    const segments = error.instancePath === '' ? [] : error.instancePath.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    const path = segments.map((s) => (/^\d+$/.test(s) ? Number(s) : s));
    let detail = error.message ?? error.keyword;
    let where = error.instancePath;
    if (error.keyword === 'additionalProperties') {
      const extra = (error.params as { additionalProperty: string }).additionalProperty;
      detail = `unknown field "${extra}"`;
      where = `${error.instancePath}/${extra}`;
      path.push(extra);
    } else if (error.keyword === 'required') {
      detail = `missing required field "${(error.params as { missingProperty: string }).missingProperty}"`;
    } else if (error.keyword === 'oneOf') {
      detail = 'does not match any of the allowed forms';
      const description = (error.parentSchema as { description?: string } | undefined)?.description;
      if (description !== undefined) detail += ` (${description})`;
    } else if (error.keyword === 'enum') {
      detail = `${detail}: ${(error.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    }
    this.problem(parsed.file, where, detail, lineOf(parsed, path));
  }
}

/**
 * When a value matches none of a oneOf's forms, ajv reports why each form failed. If exactly one form has the
 * value's shape (no missing or unknown fields at that place), its errors are what the author needs ("unit must be
 * one of ..."); otherwise one error for the oneOf, naming the allowed forms, is clearer than every form's details.
 */
function compactErrors(errors: readonly ErrorObject[]): ErrorObject[] {
  const oneOfs = errors.filter((e) => e.keyword === 'oneOf');
  let result = [...errors];
  for (const oneOf of oneOfs) {
    const prefix = `${oneOf.schemaPath}/`;
    const children = result.filter((e) => e.schemaPath.startsWith(prefix));
    const branches = new Map<string, ErrorObject[]>();
    for (const child of children) {
      const branch = child.schemaPath.slice(prefix.length).split('/')[0] ?? '';
      branches.set(branch, [...(branches.get(branch) ?? []), child]);
    }
    const shaped = [...branches.values()].filter(
      (group) => !group.some((e) => (e.keyword === 'required' || e.keyword === 'additionalProperties') && e.instancePath === oneOf.instancePath),
    );
    result = result.filter((e) => !e.schemaPath.startsWith(prefix) && e !== oneOf);
    if (shaped.length === 1) result.push(...(shaped[0] as ErrorObject[]));
    else result.push(oneOf);
  }
  return result;
}

export function lineOf(parsed: ParsedYaml, path: (string | number)[]): number | undefined {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = parsed.doc.getIn(path.slice(0, depth), true) as { range?: [number, number, number] } | undefined;
    if (node?.range) return parsed.lines.linePos(node.range[0]).line;
    if (depth === 0 && parsed.doc.contents?.range) return parsed.lines.linePos(parsed.doc.contents.range[0]).line;
  }
  return undefined;
}

export function listFiles(reader: CellReader, relativeDir: string, suffix: string, alsoAllowed: readonly string[] = []): string[] {
  const absolute = join(reader.directory, relativeDir);
  if (!existsSync(absolute) || !statSync(absolute).isDirectory()) {
    reader.problem(relativeDir, '', 'folder not found');
    return [];
  }
  const names = readdirSync(absolute).filter((name) => !name.startsWith('.')).sort();
  const allowed = [suffix, ...alsoAllowed];
  for (const name of names) {
    // A forbid policy saved as .txt, or a device as .yml, would otherwise be ignored without a word.
    if (!allowed.some((ending) => name.endsWith(ending))) reader.problem(`${relativeDir}/${name}`, '', `unexpected file: only *${allowed.join(', *')} files belong in ${relativeDir}/`);
  }
  return names.filter((name) => name.endsWith(suffix)).map((name) => `${relativeDir}/${name}`);
}

export function pointerToPath(pointer: string): (string | number)[] {
  return pointer === '' ? [] : pointer.slice(1).split('/').map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

/** Whether `path` (inside `directory` by name) leads outside it through a symbolic link. */
export function escapesThroughLink(directory: string, path: string): boolean {
  if (!existsSync(path)) return false; // a missing file is reported when it is read
  const inside = relative(realpathSync(directory), realpathSync(path));
  return inside.startsWith('..') || isAbsolute(inside);
}
