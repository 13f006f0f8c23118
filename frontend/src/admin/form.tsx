// The pieces every admin form shares: a field with its problems beside it, and the summary of
// all problems at the top (role="alert", each one a link to its field).

import type { ReactNode } from "react";

import { useI18n } from "../i18n/context";
import { problemsOf, type FormProblem, type Words } from "./problems";

/** A sentence from Words in the current language. */
export function useWords(): (words: Words) => string {
  const { t } = useI18n();
  return (words) => ("text" in words ? words.text : t(words.key, words.vars));
}

/** The element id of a form field: "ae_titles.0.ae_title" in form "f1" → "f1-ae_titles-0-ae_title". */
export function fieldId(formId: string, field: string): string {
  return `${formId}-${field.replaceAll(".", "-")}`;
}

/** The input's props that tie it to its problems. */
export function invalidProps(formId: string, field: string, problems: readonly FormProblem[]) {
  const mine = problemsOf(problems, field).length > 0;
  return {
    id: fieldId(formId, field),
    "aria-invalid": mine ? (true as const) : undefined,
    "aria-describedby": mine ? `${fieldId(formId, field)}-problem` : undefined,
  };
}

export function FieldProblems({
  formId,
  field,
  problems,
}: {
  formId: string;
  field: string;
  problems: readonly FormProblem[];
}) {
  const words = useWords();
  const mine = problemsOf(problems, field);
  if (mine.length === 0) return null;
  return (
    <p className="field-problem" id={`${fieldId(formId, field)}-problem`}>
      {mine.map((p) => words(p.words)).join(" ")}
    </p>
  );
}

/** All problems of the form, at its top: each on a field is a link to that field. */
export function ProblemSummary({
  formId,
  problems,
  labelOf,
}: {
  formId: string;
  problems: readonly FormProblem[];
  labelOf: (field: string) => string;
}) {
  const { t } = useI18n();
  const words = useWords();
  if (problems.length === 0) return null;
  return (
    <div className="error problem-summary" role="alert">
      <p className="problem-title">{t("admin.problems", { n: problems.length })}</p>
      <ul>
        {problems.map((p, i) => (
          <li key={`${p.field ?? ""}-${i}`}>
            {p.field !== null ? (
              <a
                href={`#${fieldId(formId, p.field)}`}
                onClick={(e) => {
                  e.preventDefault();
                  document.getElementById(fieldId(formId, p.field ?? ""))?.focus();
                }}
              >
                {labelOf(p.field)}: {words(p.words)}
              </a>
            ) : (
              words(p.words)
            )}
          </li>
        ))}
      </ul>
    </div>
  );
}

export function TextField({
  formId,
  field,
  label,
  value,
  onChange,
  problems,
  hint,
  optional = false,
  type = "text",
  autoComplete,
  maxLength,
  inputMode,
  disabled = false,
}: {
  formId: string;
  field: string;
  label: string;
  value: string;
  onChange: (value: string) => void;
  problems: readonly FormProblem[];
  hint?: ReactNode;
  optional?: boolean;
  type?: "text" | "password" | "url" | "number" | "time" | "datetime-local";
  autoComplete?: string;
  maxLength?: number;
  inputMode?: "numeric" | "decimal";
  disabled?: boolean;
}) {
  const { t } = useI18n();
  const props = invalidProps(formId, field, problems);
  const hintId = hint ? `${props.id}-hint` : undefined;
  const describedBy = [hintId, props["aria-describedby"]].filter(Boolean).join(" ") || undefined;
  return (
    <div className="field">
      <label htmlFor={props.id}>
        {label}
        {optional && <span className="muted"> ({t("field.optional")})</span>}
      </label>
      {hint && (
        <span className="muted field-hint" id={hintId}>
          {hint}
        </span>
      )}
      <input
        id={props.id}
        type={type}
        value={value}
        onChange={(e) => onChange(e.target.value)}
        aria-invalid={props["aria-invalid"]}
        aria-describedby={describedBy}
        aria-required={optional ? undefined : true}
        autoComplete={autoComplete}
        maxLength={maxLength}
        inputMode={inputMode}
        disabled={disabled}
        spellCheck={false}
      />
      <FieldProblems formId={formId} field={field} problems={problems} />
    </div>
  );
}
