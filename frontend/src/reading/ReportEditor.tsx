import { useCallback, useEffect, useId, useRef, useState, type ReactNode, type RefObject } from "react";

import { ApiError } from "../api/client";
import type { CaseDetail } from "../api/types";
import { errorText } from "../errors";
import { useI18n } from "../i18n/context";
import { useSession } from "../session";
import type { KeyImage, Measurement } from "../viewer/types";
import { AmendDialog } from "./AmendDialog";
import { hasAddenda, canAmend, editedSinceSigned, supersededVersion } from "./amend";
import {
  addAddendum,
  amendReport,
  changeTemplate,
  findReport,
  flagCritical,
  getReport,
  getTemplate,
  listTemplates,
  saveDraft,
  signReport,
  startReport,
  versionPdfPath,
  type Credentials,
} from "./api";
import { Autosaver, sameContent, type DraftContent, type SaveStatus } from "./autosave";
import {
  dimensionsOf,
  entriesFromValues,
  fieldProblem,
  hasNormal,
  insertMeasurement,
  labelText,
  missingItems,
  sectionNormal,
  toggleKeyImage,
  valuesFromEntries,
  type FieldValue,
  type FocusedInput,
  type FormValues,
  type Problem,
} from "./form";
import { PasswordDialog } from "./PasswordDialog";
import { PdfLink } from "./PdfLink";
import { PdfPreview } from "./PdfPreview";
import type { KeyImageRef, ReportRead, Template, TemplateField, TemplateSection, TemplateSummary } from "./types";

/** What the reading page (shortcuts, viewer) asks of the editor. */
export interface EditorCommands {
  saveNow: () => void;
  openSign: () => void;
  /** The normal study for the section that has the focus (else the findings). */
  normal: () => void;
  measurement: (m: Measurement) => void;
  keyImage: (image: KeyImage, marked: boolean) => void;
}

interface Form {
  values: FormValues;
  texts: Record<string, string>;
  keyImages: KeyImageRef[];
}

const EMPTY_FORM: Form = { values: {}, texts: {}, keyImages: [] };

export function ReportEditor({
  detail,
  holder,
  senior,
  commands,
  onKeyImages,
  onReport,
}: {
  detail: CaseDetail;
  /** The signed-in reader holds the case: the draft is theirs to write and sign. */
  holder: boolean;
  /** Qualified for final reports (may release a STAT case early as preliminary). */
  senior: boolean;
  commands: RefObject<EditorCommands | null>;
  onKeyImages: (images: KeyImageRef[]) => void;
  onReport: (report: ReportRead) => void;
}) {
  const { t, lang } = useI18n();
  const { client, user } = useSession();
  const id = useId();
  const [report, setReport] = useState<ReportRead | null>(null);
  const [template, setTemplate] = useState<Template | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [noReport, setNoReport] = useState(false);
  const [form, setForm] = useState<Form>(EMPTY_FORM);
  const [status, setStatus] = useState<SaveStatus>("idle");
  const [saveError, setSaveError] = useState<string | null>(null);
  const [missing, setMissing] = useState<string[]>([]);
  const [savedRevision, setSavedRevision] = useState(0);
  const [epoch, setEpoch] = useState(0);
  const [templates, setTemplates] = useState<TemplateSummary[]>([]);
  const [signOpen, setSignOpen] = useState(false);
  const [preliminary, setPreliminary] = useState(false);
  const [showRequired, setShowRequired] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  // A correction of the signed report being written: the form as it was when it began (what
  // Cancel puts back), the revision then, and whether the draft held unsigned edits already.
  const [amending, setAmending] = useState<{ start: Form; revision: number; resumed: boolean } | null>(null);
  const [amendOpen, setAmendOpen] = useState(false);
  const [amendError, setAmendError] = useState<string | null>(null);
  const amendBanner = useRef<HTMLDivElement>(null);
  const amendButton = useRef<HTMLButtonElement>(null);
  const returnFocus = useRef(false);
  const noticeRef = useRef<HTMLParagraphElement>(null);
  const formRef = useRef<Form>(EMPTY_FORM);
  const saver = useRef<Autosaver | null>(null);
  const focused = useRef<FocusedInput | null>(null);
  const focusedSection = useRef<string | null>(null);
  const caseId = detail.id;

  const show = useCallback(
    (r: ReportRead, tpl: Template) => {
      setReport(r);
      setTemplate(tpl);
      const draft = r.draft;
      const next: Form = draft
        ? { values: valuesFromEntries(tpl, draft.entries), texts: { ...draft.texts }, keyImages: draft.key_images }
        : EMPTY_FORM;
      formRef.current = next;
      setForm(next);
      setMissing(draft?.missing ?? []);
      setSavedRevision(draft?.revision ?? 0);
      setEpoch((n) => n + 1);
      onKeyImages(next.keyImages);
    },
    [onKeyImages],
  );

  // The case's report, started from the template chosen for the study when there is none yet.
  useEffect(() => {
    const run = new AbortController();
    const stopped = () => run.signal.aborted;
    (async () => {
      // The case says whether a report exists, so no request is made only to be told 404.
      let r = detail.report_id ? await getReport(client, detail.report_id) : null;
      if (!r && holder) {
        try {
          r = await startReport(client, caseId);
        } catch (e) {
          if (!(e instanceof ApiError && e.status === 409)) throw e;
          r = await findReport(client, caseId);
        }
      }
      if (stopped()) return;
      if (!r) {
        setNoReport(true);
        return;
      }
      const tpl = await getTemplate(client, r.template_id);
      if (!stopped()) {
        setNoReport(false);
        show(r, tpl);
      }
    })().catch((e: unknown) => {
      if (!stopped()) setLoadError(errorText(e, t));
    });
    return () => {
      run.abort();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, caseId, holder]);

  useEffect(() => {
    let live = true;
    listTemplates(client, detail.modalities[0]).then(
      (list) => {
        if (live) setTemplates(list);
      },
      () => {
        // the switch then offers the report's own template only
      },
    );
    return () => {
      live = false;
    };
  }, [client, detail.modalities]);

  const reportId = report?.id ?? null;
  const isDraft = report?.status === "draft" && !report.awaiting_cosign;
  const editable = (isDraft && holder && report.draft !== null) || amending !== null;

  // One autosaver per loaded draft (a template change or a merge starts from the server's).
  useEffect(() => {
    if (!report || !template || !editable || !report.draft) return;
    const s = new Autosaver({
      revision: report.draft.revision,
      content: contentOf(template, formRef.current),
      save: async (content, revision) => {
        const d = await saveDraft(client, report.id, { revision, ...content });
        return { revision: d.revision, missing: d.missing };
      },
      load: async () => {
        const r = await getReport(client, report.id);
        const d = r.draft;
        if (!d) throw new ApiError(409, "conflict", t("reading.save.gone"));
        return { revision: d.revision, content: { entries: d.entries, texts: d.texts, key_images: d.key_images } };
      },
      onStatus: (next, error) => {
        setStatus(next);
        setSaveError(error === undefined ? null : errorText(error, t));
      },
      onSaved: (answer) => {
        setMissing(answer.missing);
        setSavedRevision(answer.revision);
      },
      onMerged: (content) => {
        const next: Form = {
          values: valuesFromEntries(template, content.entries),
          texts: content.texts,
          keyImages: content.key_images,
        };
        formRef.current = next;
        setForm(next);
        onKeyImages(next.keyImages);
      },
    });
    saver.current = s;
    return () => {
      // Leaving the page: what is typed is still sent.
      void s.flush().finally(() => {
        s.stop();
      });
      if (saver.current === s) saver.current = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [epoch, editable]);

  const update = useCallback(
    (change: Partial<Form>) => {
      if (!template) return;
      const next = { ...formRef.current, ...change };
      formRef.current = next;
      setForm(next);
      if (change.keyImages) onKeyImages(next.keyImages);
      saver.current?.change(contentOf(template, next));
    },
    [template, onKeyImages],
  );

  const setValue = (fieldId: string, value: FieldValue) => {
    update({ values: { ...formRef.current.values, [fieldId]: value } });
  };

  const applyNormal = (section: TemplateSection) => {
    const normal = sectionNormal(section, lang);
    const texts = normal.text !== null ? { ...formRef.current.texts, [section.key]: normal.text } : formRef.current.texts;
    update({ values: { ...formRef.current.values, ...normal.values }, texts });
  };

  const saveNow = () => {
    void saver.current?.flush();
  };

  const openSign = () => {
    if (!editable) return;
    setShowRequired(true);
    if (amending) setAmendOpen(true);
    else setSignOpen(true);
    void saver.current?.flush();
  };

  // The signed content is the draft as the last signature left it (or as an earlier correction
  // left it, kept on the server): read it fresh, then edit it with autosave as a draft.
  const startAmend = async () => {
    if (!report || !template) return;
    setAmendError(null);
    setNotice(null);
    try {
      const r = await getReport(client, report.id);
      if (!r.draft || !canAmend(r, user.id, senior)) {
        setReport(r);
        return;
      }
      show(r, template);
      setShowRequired(false);
      setAmending({
        start: formRef.current,
        revision: r.draft.revision,
        resumed: editedSinceSigned(r),
      });
    } catch (e) {
      setAmendError(errorText(e, t));
    }
  };

  // Cancel puts the draft back as it was when the correction began (the signed content, unless
  // an earlier correction was left unsigned), so this one's edits do not linger in the draft.
  const cancelAmend = async () => {
    if (!report || !template || !amending) return;
    const s = saver.current;
    try {
      if (s) {
        const start = contentOf(template, amending.start);
        if (!sameContent(start, contentOf(template, formRef.current))) s.change(start);
        await s.flush();
        if (s.dirty) throw new Error(t("reading.amend.notRestored"));
        s.stop();
      }
      const r = await getReport(client, report.id);
      setAmending(null);
      show(r, template);
      setNotice(t("reading.amend.cancelled", { n: supersededVersion(r)?.version ?? 0 }));
      setStatus("idle");
      returnFocus.current = true;
    } catch (e) {
      setSaveError(errorText(e, t));
      setStatus("error");
    }
  };

  const amend = async (credentials: Credentials, reason: string) => {
    if (!report) return;
    const s = saver.current;
    if (s) {
      await s.flush();
      if (s.dirty) throw new Error(t("reading.sign.unsaved"));
    }
    const r = await amendReport(client, report.id, { ...credentials, reason });
    s?.stop();
    setAmendOpen(false);
    setAmending(null);
    setStatus("idle");
    setReport(r);
    onReport(r);
    setNotice(t("reading.amend.done", { n: r.versions.at(-1)?.version ?? 0 }));
    requestAnimationFrame(() => noticeRef.current?.focus());
  };

  // Opening a correction removes the button that had the focus: it goes to the banner; after a
  // cancel it goes back to the button, once the button is rendered again (an effect, after the
  // commit: a frame callback may come before it on a busy machine).
  const amendingNow = amending !== null;
  useEffect(() => {
    if (amendingNow) amendBanner.current?.focus();
    else if (returnFocus.current) {
      returnFocus.current = false;
      amendButton.current?.focus();
    }
  }, [amendingNow]);

  useEffect(() => {
    commands.current = {
      saveNow,
      openSign,
      normal: () => {
        if (!template || !editable) return;
        const key = focusedSection.current ?? "findings";
        const section = template.sections.find((s) => s.key === key);
        if (section) applyNormal(section);
      },
      measurement: (m) => {
        if (!template || !editable) return;
        const result = insertMeasurement(template, formRef.current.values, formRef.current.texts, focused.current, m);
        update({ values: result.values, texts: result.texts });
        setNotice(t(result.into === "field" ? "reading.measurement.field" : "reading.measurement.text", { text: m.text }));
      },
      keyImage: (image, marked) => {
        if (!editable) return;
        update({ keyImages: toggleKeyImage(formRef.current.keyImages, image, marked) });
      },
    };
  });

  const switchTemplate = async (templateId: string) => {
    if (!report || !saver.current) return;
    try {
      await saver.current.flush();
      const r = await changeTemplate(client, report.id, saver.current.currentRevision, templateId);
      show(r, await getTemplate(client, r.template_id));
    } catch (e) {
      setSaveError(errorText(e, t));
      setStatus("error");
    }
  };

  const sign = async (credentials: Credentials) => {
    if (!report) return;
    const s = saver.current;
    if (s) {
      await s.flush();
      if (s.dirty) throw new Error(t("reading.sign.unsaved"));
    }
    const r = await signReport(client, report.id, credentials, preliminary);
    s?.stop();
    setSignOpen(false);
    setReport(r);
    onReport(r);
  };

  if (loadError) {
    return (
      <p className="error" role="alert">
        {loadError}
      </p>
    );
  }
  if (noReport) return <p className="muted">{t("reading.noReport")}</p>;
  if (!report || !template) return <p role="status">{t("reading.loadingReport")}</p>;

  const items = missingItems(missing, template, lang);
  const problemText = (p: Problem, unit: string): string => {
    switch (p.code) {
      case "required":
        return t("reading.problem.required");
      case "number":
        return t("reading.problem.number");
      case "min":
        return t("reading.problem.min", { limit: `${p.limit}${unit ? ` ${unit}` : ""}` });
      case "max":
        return t("reading.problem.max", { limit: `${p.limit}${unit ? ` ${unit}` : ""}` });
    }
  };

  const fieldInput = (f: TemplateField, section: TemplateSection): ReactNode => {
    const fid = `${id}-f-${f.id}`;
    const value = form.values[f.id];
    const problem = fieldProblem(f, value);
    const shown = problem && (problem.code !== "required" || showRequired) ? problem : null;
    const unit = "unit" in f && f.unit ? unitText(f.unit) : "";
    const label = labelText(f.label, lang);
    const hintParts: string[] = [];
    if ((f.type === "number" || f.type === "measurement") && (f.min !== undefined || f.max !== undefined)) {
      hintParts.push(t("reading.range", { min: f.min ?? "", max: f.max ?? "", unit }));
    }
    const describedBy = [shown ? `${fid}-problem` : "", hintParts.length ? `${fid}-hint` : ""].filter(Boolean).join(" ") || undefined;
    const onFocus = (index = 0) => () => {
      focusedSection.current = section.key;
      focused.current = { fieldId: f.id, index };
    };
    const common = {
      disabled: !editable,
      "aria-invalid": shown ? true : undefined,
      "aria-describedby": describedBy,
    } as const;
    const required = f.required ? <span aria-hidden="true" className="required-mark"> *</span> : null;
    const after = (
      <>
        {hintParts.length > 0 && (
          <span id={`${fid}-hint`} className="muted hint">
            {hintParts.join(" ")}
          </span>
        )}
        {shown && (
          <span id={`${fid}-problem`} className="error field-problem">
            {problemText(shown, unit)}
          </span>
        )}
      </>
    );

    if (f.type === "measurement") {
      const n = dimensionsOf(f);
      const dims = Array.isArray(value) ? value : Array.from({ length: n }, () => "");
      return (
        <fieldset className="report-field measurement" key={f.id} aria-describedby={describedBy}>
          <legend>
            {label}
            {required}
          </legend>
          <div className="dims">
            {dims.map((d, i) => (
              <span key={i} className="dim">
                {i > 0 && <span aria-hidden="true">×</span>}
                <input
                  {...common}
                  type="text"
                  inputMode="decimal"
                  aria-label={n > 1 ? t("reading.dimension", { label, n: i + 1, of: n }) : label}
                  value={d}
                  onFocus={onFocus(i)}
                  onChange={(e) => {
                    const next = [...dims];
                    next[i] = e.target.value;
                    setValue(f.id, next);
                  }}
                />
              </span>
            ))}
            <span className="unit">{unit}</span>
          </div>
          {after}
        </fieldset>
      );
    }
    if (f.type === "multichoice") {
      const chosen = Array.isArray(value) ? value : [];
      return (
        <fieldset className="report-field multichoice" key={f.id} aria-describedby={describedBy}>
          <legend>
            {label}
            {required}
          </legend>
          {f.options.map((o) => (
            <label key={o.value} className="check">
              <input
                type="checkbox"
                disabled={!editable}
                checked={chosen.includes(o.value)}
                onFocus={onFocus()}
                onChange={(e) => {
                  setValue(f.id, e.target.checked ? [...chosen, o.value] : chosen.filter((v) => v !== o.value));
                }}
              />
              {labelText(o.label, lang)}
            </label>
          ))}
          {after}
        </fieldset>
      );
    }
    const text = typeof value === "string" ? value : "";
    let input: ReactNode;
    if (f.type === "choice") {
      input = (
        <select {...common} id={fid} value={text} onFocus={onFocus()} onChange={(e) => setValue(f.id, e.target.value)}>
          <option value="">{t("reading.choose")}</option>
          {f.options.map((o) => (
            <option key={o.value} value={o.value}>
              {labelText(o.label, lang)}
            </option>
          ))}
        </select>
      );
    } else if (f.type === "text" && f.multiline) {
      input = (
        <textarea {...common} id={fid} rows={2} value={text} onFocus={onFocus()} onChange={(e) => setValue(f.id, e.target.value)} />
      );
    } else {
      input = (
        <span className="with-unit">
          <input
            {...common}
            id={fid}
            type={f.type === "date" ? "date" : "text"}
            inputMode={f.type === "number" ? "decimal" : undefined}
            value={text}
            onFocus={onFocus()}
            onChange={(e) => setValue(f.id, e.target.value)}
          />
          {unit && <span className="unit">{unit}</span>}
        </span>
      );
    }
    return (
      <div className="field report-field" key={f.id}>
        <label htmlFor={fid}>
          {label}
          {required}
        </label>
        {input}
        {after}
      </div>
    );
  };

  const sectionBlock = (s: TemplateSection) => {
    const title = labelText(s.title, lang);
    const tid = `${id}-s-${s.key}`;
    let group = "";
    return (
      <section key={s.key} className="report-section" aria-labelledby={tid}>
        <div className="section-head">
          <h3 id={tid}>
            {title}
            {s.required && <span className="required-mark"> *</span>}
          </h3>
          {editable && hasNormal(s) && (
            <button
              type="button"
              className="secondary small"
              aria-label={t("reading.normalFor", { section: title })}
              onClick={() => applyNormal(s)}
            >
              {t("reading.normal")}
            </button>
          )}
        </div>
        {s.fields.map((f) => {
          const g = labelText(f.group, lang);
          const head = g && g !== group ? <h4 key={`${f.id}-group`}>{g}</h4> : null;
          group = g;
          return [head, fieldInput(f, s)];
        })}
        <div className="field">
          <label htmlFor={`${tid}-text`}>{t("reading.narrative", { section: title })}</label>
          <textarea
            id={`${tid}-text`}
            rows={s.key === "findings" ? 6 : s.key === "impression" ? 4 : 2}
            disabled={!editable}
            value={form.texts[s.key] ?? ""}
            onFocus={() => {
              focusedSection.current = s.key;
              focused.current = null;
            }}
            onChange={(e) => update({ texts: { ...formRef.current.texts, [s.key]: e.target.value } })}
          />
        </div>
      </section>
    );
  };

  const statusText: Record<SaveStatus, string> = {
    idle: "",
    pending: t("reading.save.pending"),
    saving: t("reading.save.saving"),
    saved: t("reading.save.saved"),
    merged: t("reading.save.merged"),
    conflict: t("reading.save.conflict", { message: saveError ?? "" }),
    error: t("reading.save.error", { message: saveError ?? "" }),
  };
  const latest = report.versions.at(-1);

  return (
    <div className="report-editor">
      <div className="editor-bar">
        <h2>{t("reading.report")}</h2>
        <span className={`badge status-${report.status}`}>{t(`reading.state.${report.status}`)}</span>
        {report.critical && <span className="badge sla-breached">{t("reading.critical.flagged")}</span>}
        {editable && (
          <span className={`save-status save-${status}`} role="status" aria-live="polite">
            {statusText[status]}
          </span>
        )}
      </div>

      {editable && isDraft && (
        <div className="field inline template-switch">
          <label htmlFor={`${id}-template`}>{t("reading.template")}</label>
          <select id={`${id}-template`} value={report.template_id} onChange={(e) => void switchTemplate(e.target.value)}>
            {!templates.some((x) => x.id === report.template_id) && (
              <option value={report.template_id}>{report.template_title}</option>
            )}
            {templates.map((x) => (
              <option key={x.id} value={x.id}>
                {labelText(x.title, lang)}
              </option>
            ))}
          </select>
        </div>
      )}

      {report.awaiting_cosign && <p className="notice">{t("reading.awaitingCosign")}</p>}
      {isDraft && !holder && <p className="notice">{t("reading.notHolder")}</p>}
      {notice && (
        <p className="muted" role="status" tabIndex={-1} ref={noticeRef}>
          {notice}
        </p>
      )}

      {amending && (
        <div className="notice amend-banner" ref={amendBanner} tabIndex={-1} aria-labelledby={`${id}-amend-title`} role="region">
          <h3 id={`${id}-amend-title`}>{t("reading.amend.banner", { n: supersededVersion(report)?.version ?? 0 })}</h3>
          <p>{t("reading.amend.autosave")}</p>
          {hasAddenda(report) && <p>{t("reading.amend.addenda", { n: supersededVersion(report)?.version ?? 0 })}</p>}
          {amending.resumed && (
            <p>{t("reading.amend.resumed", { n: supersededVersion(report)?.version ?? 0 })}</p>
          )}
        </div>
      )}

      {(isDraft || amending) && (
        <form
          className="report-form"
          aria-label={t("reading.report")}
          onSubmit={(e) => {
            e.preventDefault();
            openSign();
          }}
        >
          {template.sections.map(sectionBlock)}

          <section className="report-section" aria-labelledby={`${id}-keys`}>
            <h3 id={`${id}-keys`}>{t("reading.keyImages")}</h3>
            {form.keyImages.length === 0 ? (
              <p className="muted">{t("reading.keyImagesNone")}</p>
            ) : (
              <ul className="key-images">
                {form.keyImages.map((k) => (
                  <li key={`${k.sop_instance_uid}-${k.frame}`}>
                    {k.caption || k.sop_instance_uid}
                    {editable && (
                      <button
                        type="button"
                        className="secondary small"
                        onClick={() =>
                          update({
                            keyImages: form.keyImages.filter((x) => x !== k),
                          })
                        }
                      >
                        {t("reading.remove")}
                      </button>
                    )}
                  </li>
                ))}
              </ul>
            )}
          </section>

          {items.length > 0 && (
            <section className="missing card" aria-labelledby={`${id}-missing`}>
              <h3 id={`${id}-missing`}>{t("reading.missing", { n: items.length })}</h3>
              <ul>
                {items.map((m) => (
                  <li key={m.key}>
                    <strong>{m.label}</strong>: {m.message}
                  </li>
                ))}
              </ul>
            </section>
          )}

          {editable && (
            <div className="actions">
              <button type="button" className="secondary" onClick={saveNow}>
                {t("reading.saveNow")} <kbd>Ctrl+S</kbd>
              </button>
              <button type="submit" className="primary">
                {t(amending ? "reading.amend.open" : "reading.sign.open")} <kbd>Ctrl+Enter</kbd>
              </button>
              {amending && (
                <button type="button" className="secondary" onClick={() => void cancelAmend()}>
                  {t("reading.amend.cancel")}
                </button>
              )}
            </div>
          )}
        </form>
      )}

      {report.versions.length > 0 && (
        <section className="report-section versions" aria-labelledby={`${id}-versions`}>
          <h3 id={`${id}-versions`}>{t("reading.versions")}</h3>
          <ul>
            {[...report.versions].reverse().map((v) => (
              <li key={v.version} className="version">
                <span>
                  {t("reading.version", { n: v.version })} · {t(`reading.state.${v.status as "final"}`)}
                  {v.signatures.map((s) => ` · ${s.printed_name}`).join("")}
                  {v.superseded_by !== null && ` · ${t("reading.supersededBy", { n: v.superseded_by })}`}
                </span>{" "}
                <PdfLink
                  path={versionPdfPath(report.id, v.version)}
                  fileName={`report-${report.id}-v${v.version}.pdf`}
                  label={t("reading.pdfVersion", { n: v.version })}
                />
                {v.status === "amended" && v.amendment_reason && (
                  <p className="muted amend-reason">{t("reading.amend.reasonShown", { reason: v.amendment_reason })}</p>
                )}
              </li>
            ))}
          </ul>
        </section>
      )}

      {!isDraft && !amending && canAmend(report, user.id, senior) && (
        <div className="actions">
          <button type="button" className="secondary" ref={amendButton} onClick={() => void startAmend()}>
            {t("reading.amend.start")}
          </button>
        </div>
      )}
      {amendError && (
        <p className="error" role="alert">
          {amendError}
        </p>
      )}

      {!isDraft && !amending && latest && holderOfSigned(report, holder) && (
        <AddendumForm report={report} onDone={(r) => {
          setReport(r);
          onReport(r);
        }} />
      )}

      <CriticalFlag report={report} onFlagged={() => {
        void getReport(client, report.id).then(setReport, () => undefined);
      }} />

      {(isDraft || (amending && (amending.resumed || savedRevision !== amending.revision))) && reportId !== null && (
        <section className="report-section" aria-labelledby={`${id}-preview`}>
          <h3 id={`${id}-preview`}>{t("reading.preview.heading")}</h3>
          <PdfPreview reportId={reportId} revision={savedRevision} />
        </section>
      )}

      {amendOpen && amending && (
        <AmendDialog
          supersedes={supersededVersion(report)?.version ?? 0}
          onClose={() => setAmendOpen(false)}
          onConfirm={amend}
        />
      )}

      {signOpen && (
        <PasswordDialog
          title={t("reading.sign.title")}
          confirmLabel={t("reading.sign.confirm")}
          onClose={() => setSignOpen(false)}
          onConfirm={sign}
        >
          <p>{t(senior && !preliminary ? "reading.sign.final" : "reading.sign.preliminary")}</p>
          {items.length > 0 && (
            <div className="missing" role="alert">
              <p>{t("reading.missing", { n: items.length })}</p>
              <ul>
                {items.map((m) => (
                  <li key={m.key}>
                    <strong>{m.label}</strong>: {m.message}
                  </li>
                ))}
              </ul>
            </div>
          )}
          {senior && detail.priority === "stat" && (
            <label className="check">
              <input type="checkbox" checked={preliminary} onChange={(e) => setPreliminary(e.target.checked)} />
              {t("reading.sign.early")}
            </label>
          )}
        </PasswordDialog>
      )}
    </div>
  );
}

function contentOf(template: Template, form: Form): DraftContent {
  return { entries: entriesFromValues(template, form.values), texts: form.texts, key_images: form.keyImages };
}

const UNIT_TEXT: Record<string, string> = {
  mm2: "mm²",
  cm2: "cm²",
  mm3: "mm³",
  cm3: "cm³",
  "[hnsf'U]": "HU",
  "mGy.cm": "mGy·cm",
  "mm[Hg]": "mmHg",
  "{count}": "",
};

/** A UCUM code as the report shows it. */
function unitText(code: string): string {
  return UNIT_TEXT[code] ?? code;
}

/** Addenda are signed by a reader of the report: who holds the case, or wrote it. */
function holderOfSigned(report: ReportRead, holder: boolean): boolean {
  return holder || report.versions.length > 0;
}

function AddendumForm({ report, onDone }: { report: ReportRead; onDone: (r: ReportRead) => void }) {
  const { t } = useI18n();
  const { client } = useSession();
  const id = useId();
  const [open, setOpen] = useState(false);
  const [text, setText] = useState("");
  const [reason, setReason] = useState("");
  const [signing, setSigning] = useState(false);

  if (!open) {
    return (
      <div className="actions">
        <button type="button" className="secondary" onClick={() => setOpen(true)}>
          {t("reading.addendum.open")}
        </button>
      </div>
    );
  }
  return (
    <section className="report-section" aria-labelledby={`${id}-title`}>
      <h3 id={`${id}-title`}>{t("reading.addendum.title")}</h3>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (text.trim() && reason.trim()) setSigning(true);
        }}
      >
        <div className="field">
          <label htmlFor={`${id}-text`}>{t("reading.addendum.text")}</label>
          <textarea id={`${id}-text`} rows={3} required maxLength={8000} value={text} onChange={(e) => setText(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor={`${id}-reason`}>{t("reading.addendum.reason")}</label>
          <input id={`${id}-reason`} required maxLength={2000} value={reason} onChange={(e) => setReason(e.target.value)} />
        </div>
        <div className="actions">
          <button type="submit" className="primary">
            {t("reading.addendum.sign")}
          </button>
          <button type="button" className="secondary" onClick={() => setOpen(false)}>
            {t("reading.cancel")}
          </button>
        </div>
      </form>
      {signing && (
        <PasswordDialog
          title={t("reading.addendum.title")}
          confirmLabel={t("reading.addendum.sign")}
          onClose={() => setSigning(false)}
          onConfirm={async (credentials) => {
            const r = await addAddendum(client, report.id, { ...credentials, text: text.trim(), reason: reason.trim() });
            setSigning(false);
            setOpen(false);
            setText("");
            setReason("");
            onDone(r);
          }}
        />
      )}
    </section>
  );
}

function CriticalFlag({ report, onFlagged }: { report: ReportRead; onFlagged: () => void }) {
  const { t } = useI18n();
  const { client } = useSession();
  const id = useId();
  const [open, setOpen] = useState(false);
  const [description, setDescription] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState(false);

  return (
    <section className="report-section critical" aria-labelledby={`${id}-title`}>
      <h3 id={`${id}-title`}>{t("reading.critical.title")}</h3>
      {done && (
        <p className="ok-text" role="status">
          {t("reading.critical.done")}
        </p>
      )}
      {!open ? (
        <button type="button" className="secondary danger" onClick={() => setOpen(true)}>
          {t("reading.critical.open")}
        </button>
      ) : (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            if (!description.trim()) return;
            setBusy(true);
            setError(null);
            flagCritical(client, report.id, description.trim()).then(
              () => {
                setBusy(false);
                setOpen(false);
                setDescription("");
                setDone(true);
                onFlagged();
              },
              (err: unknown) => {
                setBusy(false);
                setError(errorText(err, t));
              },
            );
          }}
        >
          <div className="field">
            <label htmlFor={`${id}-text`}>{t("reading.critical.description")}</label>
            <textarea id={`${id}-text`} rows={2} required maxLength={4000} value={description} onChange={(e) => setDescription(e.target.value)} />
          </div>
          {error && (
            <p className="error" role="alert">
              {error}
            </p>
          )}
          <div className="actions">
            <button type="submit" className="primary danger" disabled={busy}>
              {t("reading.critical.flag")}
            </button>
            <button type="button" className="secondary" onClick={() => setOpen(false)}>
              {t("reading.cancel")}
            </button>
          </div>
        </form>
      )}
    </section>
  );
}
