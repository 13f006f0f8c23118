import { useEffect, useState } from "react";

import type { Case } from "../api/types";
import { errorText } from "../errors";
import { useI18n } from "../i18n/context";
import { useSession } from "../session";
import { routing } from "./api";
import { Dialog } from "../components/Dialog";
import type { Candidate, RoutingDecision } from "./types";
import { TableWrap } from "./TableWrap";

/** Every routing decision of a case, newest first, as the engine explained it. */
export function RoutingDialog({ c, onClose }: { c: Case; onClose: () => void }) {
  const { t } = useI18n();
  const { client } = useSession();
  const [decisions, setDecisions] = useState<RoutingDecision[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const controller = new AbortController();
    routing(client, c.id, controller.signal).then(setDecisions, (e: unknown) => {
      if (!controller.signal.aborted) setError(errorText(e, t));
    });
    return () => {
      controller.abort();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, c.id]);

  return (
    <Dialog title={t("control.routing.title", { id: c.id })} onClose={onClose} closeLabel={t("control.close")} wide>
      <div data-autofocus tabIndex={-1} className="routing-body">
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        {!decisions && !error && <p role="status">{t("app.loading")}</p>}
        {decisions?.length === 0 && <p className="muted">{t("control.routing.empty")}</p>}
        {decisions?.map((d) => <DecisionView key={d.id} d={d} />)}
      </div>
    </Dialog>
  );
}

function DecisionView({ d }: { d: RoutingDecision }) {
  const { t, tv, dateTime, number } = useI18n();
  const x = d.decision;
  const offered = new Set(x.offered ?? []);
  const candidates = x.candidates ?? [];
  return (
    <section className="routing-decision">
      <h3>{t("control.routing.decision", { time: dateTime(d.decided_at), trigger: tv("trigger", d.trigger) })}</h3>
      <dl className="facts">
        <div className="fact">
          <dt>{t("control.routing.outcome")}</dt>
          <dd>
            {tv("mode", d.mode)} · {d.applied ? t("control.routing.applied") : t("control.routing.notApplied")}
          </dd>
        </div>
        {x.subspecialty && (
          <div className="fact">
            <dt>{t("control.routing.readAs")}</dt>
            <dd>
              {tv("subspecialty", x.subspecialty)}
              {x.subspecialty_reason ? ` (${x.subspecialty_reason})` : ""}
            </dd>
          </div>
        )}
        {x.sla_target_minutes !== undefined && (
          <div className="fact">
            <dt>{t("control.routing.target")}</dt>
            <dd>
              {t("control.routing.targetValue", { minutes: number(x.sla_target_minutes), reason: x.sla_reason ?? "" })}
            </dd>
          </div>
        )}
        {x.work_units !== undefined && (
          <div className="fact">
            <dt>{t("control.routing.workUnits")}</dt>
            <dd>{number(x.work_units)}</dd>
          </div>
        )}
        {d.escalation_step > 0 && (
          <div className="fact">
            <dt>{t("control.routing.step")}</dt>
            <dd>
              {number(d.escalation_step)}
              {x.widened ? ` · ${t("control.routing.widened")}` : ""}
            </dd>
          </div>
        )}
        {x.reason && (
          <div className="fact">
            <dt>{t("control.routing.why")}</dt>
            <dd>{x.reason}</dd>
          </div>
        )}
      </dl>
      {(candidates.length > 0 || (x.ineligible?.length ?? 0) > 0) && (
        <TableWrap label={t("control.routing.candidates")}>
          <table className="cases-table control-table routing-table">
            <caption>{t("control.routing.candidates")}</caption>
            <thead>
              <tr>
                <th scope="col">{t("control.routing.col.rank")}</th>
                <th scope="col">{t("control.routing.col.name")}</th>
                <th scope="col">{t("control.routing.col.result")}</th>
                <th scope="col" className="num">
                  {t("control.routing.col.score")}
                </th>
                <th scope="col">{t("control.routing.col.details")}</th>
              </tr>
            </thead>
            <tbody>
              {candidates.map((cand) => (
                <CandidateRow
                  key={cand.user_id}
                  cand={cand}
                  chosen={x.assignee === cand.user_id}
                  offered={offered.has(cand.user_id)}
                />
              ))}
              {x.ineligible?.map((g) => (
                <tr key={`group-${g.failed}`}>
                  <td>{t("control.none")}</td>
                  <td colSpan={4}>
                    {t("control.routing.grouped", { count: number(g.count), filter: tv("control.filterName", g.failed) })}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
    </section>
  );
}

function CandidateRow({ cand, chosen, offered }: { cand: Candidate; chosen: boolean; offered: boolean }) {
  const { t, tv, number } = useI18n();
  const failed = (cand.filters ?? []).filter((f) => !f.passed);
  return (
    <tr className={cand.eligible ? "" : "ineligible"}>
      <td>{cand.rank ?? t("control.none")}</td>
      <th scope="row">{cand.name}</th>
      <td>
        {cand.eligible ? t("control.routing.eligible") : t("control.routing.ineligible")}{" "}
        {chosen && <span className="badge status-assigned">{t("control.routing.chosen")}</span>}
        {offered && <span className="badge status-offered">{t("control.routing.offered")}</span>}
      </td>
      <td className="num">{cand.total !== undefined && cand.total !== null ? number(cand.total) : t("control.none")}</td>
      <td>
        {failed.length > 0 && (
          <ul className="plain-list">
            {failed.map((f) => (
              <li key={f.name}>
                <strong>{tv("control.filterName", f.name)}</strong>: {f.reason}
              </li>
            ))}
          </ul>
        )}
        {cand.eligible && (cand.filters?.length ?? 0) > 0 && (
          <details>
            <summary>{t("control.routing.passedAll")}</summary>
            <ul className="plain-list">
              {cand.filters?.map((f) => (
                <li key={f.name}>
                  <strong>{tv("control.filterName", f.name)}</strong>: {f.reason}
                </li>
              ))}
              {cand.score?.map((s) => (
                <li key={s.name}>
                  {t("control.routing.points", {
                    name: tv("control.score", s.name),
                    value: number(s.value),
                    points: number(s.points),
                  })}
                </li>
              ))}
              {cand.notes?.map((n) => <li key={n}>{n}</li>)}
            </ul>
          </details>
        )}
      </td>
    </tr>
  );
}
