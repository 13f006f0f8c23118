import { PRIORITIES, SUBSPECIALTIES, type Subspecialty } from "../api/types";
import { useI18n } from "../i18n/context";
import type { CaseFields } from "../upload/send";

// The backend's limits (cases/schemas.py ClinicalInfo).
export const MAX_QUESTION = 4000;
export const MAX_HISTORY = 8000;
export const MAX_EXAM = 200;

export function CaseFieldsForm({
  idPrefix,
  value,
  onChange,
  disabled = false,
  examExample,
}: {
  idPrefix: string;
  value: CaseFields;
  onChange: (next: CaseFields) => void;
  disabled?: boolean;
  examExample?: string;
}) {
  const { t, tv } = useI18n();
  const set = <K extends keyof CaseFields>(key: K, v: CaseFields[K]) => {
    onChange({ ...value, [key]: v });
  };
  return (
    <div className="case-fields">
      <fieldset className="priority-choice" disabled={disabled}>
        <legend>{t("field.priority")}</legend>
        {PRIORITIES.map((p) => (
          <label key={p} className={`choice priority-${p}`}>
            <input
              type="radio"
              name={`${idPrefix}-priority`}
              value={p}
              checked={value.priority === p}
              onChange={() => set("priority", p)}
            />
            <span>{tv("priority", p)}</span>
          </label>
        ))}
      </fieldset>
      <div className="field">
        <label htmlFor={`${idPrefix}-question`}>
          {t("field.clinicalQuestion")} <span className="muted">({t("field.optional")})</span>
        </label>
        <textarea
          id={`${idPrefix}-question`}
          rows={2}
          maxLength={MAX_QUESTION}
          placeholder={t("field.clinicalQuestionHint")}
          disabled={disabled}
          value={value.clinical_question}
          onChange={(e) => set("clinical_question", e.target.value)}
        />
      </div>
      <div className="field">
        <label htmlFor={`${idPrefix}-history`}>
          {t("field.clinicalHistory")} <span className="muted">({t("field.optional")})</span>
        </label>
        <textarea
          id={`${idPrefix}-history`}
          rows={2}
          maxLength={MAX_HISTORY}
          disabled={disabled}
          value={value.clinical_history}
          onChange={(e) => set("clinical_history", e.target.value)}
        />
      </div>
      <div className="field-row">
        <div className="field">
          <label htmlFor={`${idPrefix}-exam`}>
            {t("field.requestedExam")} <span className="muted">({t("field.optional")})</span>
          </label>
          <input
            id={`${idPrefix}-exam`}
            maxLength={MAX_EXAM}
            placeholder={examExample ? t("field.requestedExamHint", { example: examExample }) : undefined}
            disabled={disabled}
            value={value.requested_exam}
            onChange={(e) => set("requested_exam", e.target.value)}
          />
        </div>
        <div className="field">
          <label htmlFor={`${idPrefix}-sub`}>
            {t("field.subspecialty")} <span className="muted">({t("field.optional")})</span>
          </label>
          <select
            id={`${idPrefix}-sub`}
            disabled={disabled}
            value={value.requested_subspecialty}
            onChange={(e) => set("requested_subspecialty", e.target.value as Subspecialty | "")}
          >
            <option value="">{t("field.subspecialtyNone")}</option>
            {SUBSPECIALTIES.map((s) => (
              <option key={s} value={s}>
                {tv("subspecialty", s)}
              </option>
            ))}
          </select>
        </div>
      </div>
    </div>
  );
}
