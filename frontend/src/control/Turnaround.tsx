import { useEffect, useId, useMemo, useState } from "react";

import { errorText } from "../errors";
import { useI18n } from "../i18n/context";
import { useSession } from "../session";
import { turnaround, turnaroundCsv } from "./api";
import { barLayout, csvFileName, durationOf, linePath, overallOf, scale, seriesOf, type SeriesRow } from "./chart";
import { GROUP_BYS, INTERVALS, type GroupBy, type Interval, type TurnaroundQuery, type TurnaroundReport } from "./types";
import { TableWrap } from "./TableWrap";

const PERIODS = [1, 7, 30, 90] as const;
const PLOT = { width: 720, height: 280, left: 56, right: 16, top: 16, bottom: 56 };

export function Turnaround() {
  const { t, tv, dateTime, number } = useI18n();
  const { client } = useSession();
  const id = useId();
  const [groupBy, setGroupBy] = useState<GroupBy>("day");
  const [interval, chooseInterval] = useState<Interval>("received_to_final");
  const [days, setDays] = useState<number>(7);
  const [reload, setReload] = useState(0);
  const [report, setReport] = useState<TurnaroundReport | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [csv, setCsv] = useState<{ working: boolean; message: string | null; error: string | null }>({
    working: false,
    message: null,
    error: null,
  });

  // The range is fixed when the choice is made, so that the figures and the CSV agree.
  const query = useMemo<TurnaroundQuery>(() => {
    const until = new Date();
    const since = new Date(until.getTime() - days * 86_400_000);
    return { group_by: groupBy, since: since.toISOString(), until: until.toISOString() };
    // reload renews the range too
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [groupBy, days, reload]);

  useEffect(() => {
    const controller = new AbortController();
    turnaround(client, query, controller.signal).then(
      (next) => {
        setReport(next);
        setError(null);
      },
      (e: unknown) => {
        if (!controller.signal.aborted) setError(errorText(e, t));
      },
    );
    return () => {
      controller.abort();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, query]);

  const minutes = (value: number | null) => {
    if (value === null) return t("control.none");
    if (value < 1) return t("control.duration.underMinute");
    const d = durationOf(value);
    if (d.days > 0) return t("control.duration.days", { d: d.days, h: d.hours });
    if (d.hours > 0) return t("control.duration.hours", { h: d.hours, m: String(d.minutes).padStart(2, "0") });
    return t("control.duration.minutes", { m: d.minutes });
  };
  const percent = (value: number | null) =>
    value === null ? t("control.none") : `${number(Math.round(value * 1000) / 10)}%`;

  const download = async () => {
    setCsv({ working: true, message: null, error: null });
    try {
      const blob = await turnaroundCsv(client, query);
      const name = csvFileName(query.group_by, query.since ?? "", query.until ?? "");
      const url = URL.createObjectURL(blob);
      const link = document.createElement("a");
      link.href = url;
      link.download = name;
      document.body.append(link);
      link.click();
      link.remove();
      // the download has its own copy once started
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      setCsv({ working: false, message: t("control.turnaround.csvReady", { name }), error: null });
    } catch (e) {
      setCsv({ working: false, message: null, error: errorText(e, t) });
    }
  };

  const rows = report ? seriesOf(report, interval) : [];
  const overall = report ? overallOf(report, interval) : null;
  const groupName = tv("control.groupBy", groupBy);
  const intervalName = tv("control.interval", interval);

  return (
    <div className="control-turnaround">
      <form className="filters" aria-label={t("control.tab.turnaround")} onSubmit={(e) => e.preventDefault()}>
        <div className="field inline">
          <label htmlFor={`${id}-group`}>{t("control.turnaround.groupBy")}</label>
          <select id={`${id}-group`} value={groupBy} onChange={(e) => setGroupBy(e.target.value as GroupBy)}>
            {GROUP_BYS.map((g) => (
              <option key={g} value={g}>
                {tv("control.groupBy", g)}
              </option>
            ))}
          </select>
        </div>
        <div className="field inline">
          <label htmlFor={`${id}-interval`}>{t("control.turnaround.interval")}</label>
          <select id={`${id}-interval`} value={interval} onChange={(e) => chooseInterval(e.target.value as Interval)}>
            {INTERVALS.map((i) => (
              <option key={i} value={i}>
                {tv("control.interval", i)}
              </option>
            ))}
          </select>
        </div>
        <div className="field inline">
          <label htmlFor={`${id}-period`}>{t("control.turnaround.period")}</label>
          <select id={`${id}-period`} value={days} onChange={(e) => setDays(Number(e.target.value))}>
            {PERIODS.map((p) => (
              <option key={p} value={p}>
                {tv("control.period", String(p))}
              </option>
            ))}
          </select>
        </div>
        <button type="button" className="secondary" onClick={() => setReload((n) => n + 1)}>
          {t("control.refresh")}
        </button>
        <button type="button" className="primary" disabled={csv.working} onClick={() => void download()}>
          {csv.working ? t("control.turnaround.csvWorking") : t("control.turnaround.csv")}
        </button>
      </form>
      <p role="status" className="ok-text">
        {csv.message}
      </p>
      {csv.error && (
        <p role="alert" className="error">
          {csv.error}
        </p>
      )}
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {!report && !error && <p role="status">{t("app.loading")}</p>}

      {report && overall && (
        <>
          <p className="muted">
            {t("control.turnaround.range", { since: dateTime(report.since), until: dateTime(report.until) })}
          </p>
          <p className="control-totals">
            {t("control.turnaround.overall", {
              cases: number(report.overall.cases),
              p50: minutes(overall.p50),
              p90: minutes(overall.p90),
              compliance: percent(report.overall.sla.compliance),
            })}
          </p>
          {rows.some((r) => r.p50 !== null) ? (
            <Chart rows={rows} trend={groupBy === "day"} title={t("control.turnaround.chartTitle", { interval: intervalName, group: groupName })} />
          ) : (
            <p className="muted empty">{t("control.turnaround.noData")}</p>
          )}
          <TableWrap label={t("control.turnaround.caption", { interval: intervalName, group: groupName })}>
            <table className="cases-table control-table">
              <caption>{t("control.turnaround.caption", { interval: intervalName, group: groupName })}</caption>
              <thead>
                <tr>
                  <th scope="col">{groupName}</th>
                  <th scope="col" className="num">
                    {t("control.col.cases")}
                  </th>
                  <th scope="col" className="num">
                    {t("control.col.measured")}
                  </th>
                  <th scope="col" className="num">
                    {t("control.col.p50")}
                  </th>
                  <th scope="col" className="num">
                    {t("control.col.p90")}
                  </th>
                  <th scope="col" className="num">
                    {t("control.col.onTime")}
                  </th>
                  <th scope="col" className="num">
                    {t("control.col.breachedOpen")}
                  </th>
                </tr>
              </thead>
              <tbody>
                {report.groups.map((g, i) => {
                  const row = rows[i];
                  return (
                    <tr key={g.key}>
                      <th scope="row">{groupBy === "priority" || groupBy === "subspecialty" ? tv(groupBy, g.label) : g.label}</th>
                      <td className="num">{number(g.cases)}</td>
                      <td className="num">{number(row?.count ?? 0)}</td>
                      <td className="num">{minutes(row?.p50 ?? null)}</td>
                      <td className="num">{minutes(row?.p90 ?? null)}</td>
                      <td className="num">{percent(g.sla.compliance)}</td>
                      <td className="num">{number(g.sla.breached_open)}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </TableWrap>
        </>
      )}
    </div>
  );
}

/** Grouped bars (p50, p90) in plain SVG; the table after it carries the same figures. */
function Chart({ rows, title, trend }: { rows: SeriesRow[]; title: string; trend: boolean }) {
  const { t, number } = useI18n();
  const id = useId();
  const layout = barLayout(rows, PLOT);
  const bottom = PLOT.height - PLOT.bottom;
  const crowded = rows.length > 8;
  // By day, a line through the medians shows the trend across the bars.
  const median = trend
    ? linePath(
        layout.centres.map((c, i) => {
          const p50 = rows[i]?.p50 ?? null;
          return { x: c.x, y: p50 === null ? null : bottom - scale(p50, layout.max, bottom - PLOT.top) };
        }),
      )
    : "";
  return (
    <figure className="control-chart">
      <svg
        viewBox={`0 0 ${PLOT.width} ${PLOT.height}`}
        role="img"
        aria-labelledby={`${id}-title ${id}-desc`}
        preserveAspectRatio="xMinYMin meet"
      >
        <title id={`${id}-title`}>{title}</title>
        <desc id={`${id}-desc`}>{t("control.turnaround.chartDesc")}</desc>
        {layout.ticks.map((tick) => (
          <g key={tick.value}>
            <line className="grid" x1={PLOT.left} x2={PLOT.width - PLOT.right} y1={tick.y} y2={tick.y} />
            <text className="tick" x={PLOT.left - 6} y={tick.y} textAnchor="end" dominantBaseline="middle">
              {number(tick.value)}
            </text>
          </g>
        ))}
        <text className="axis-label" x={12} y={PLOT.top + (bottom - PLOT.top) / 2} transform={`rotate(-90 12 ${PLOT.top + (bottom - PLOT.top) / 2})`} textAnchor="middle">
          {t("control.turnaround.minutes")}
        </text>
        {layout.bars.map((bar) => (
          <rect
            key={`${bar.key}-${bar.series}`}
            className={`bar bar-${bar.series}`}
            x={bar.x}
            y={bar.y}
            width={bar.width}
            height={bar.height}
          />
        ))}
        {median && <path className="trend" d={median} />}
        {layout.centres.map((c) => (
          <text
            key={c.key}
            className="tick"
            x={c.x}
            y={bottom + 14}
            textAnchor={crowded ? "end" : "middle"}
            transform={crowded ? `rotate(-40 ${c.x} ${bottom + 14})` : undefined}
          >
            {c.label.length > 14 ? `${c.label.slice(0, 13)}…` : c.label}
          </text>
        ))}
        <line className="axis" x1={PLOT.left} x2={PLOT.width - PLOT.right} y1={bottom} y2={bottom} />
      </svg>
      <figcaption className="chart-legend">
        <span>
          <span className="swatch bar-p50" aria-hidden="true" />
          {t("control.turnaround.p50")}
        </span>
        <span>
          <span className="swatch bar-p90" aria-hidden="true" />
          {t("control.turnaround.p90")}
        </span>
      </figcaption>
    </figure>
  );
}
