import { useCallback, useEffect, useId, useMemo, useState } from "react";

import type { Hospital } from "../api/types";
import { errorText } from "../errors";
import { useI18n } from "../i18n/context";
import { useCaseEvents } from "../live/context";
import { debounce } from "../live/socket";
import { navigate } from "../router";
import { useSession } from "../session";
import { listExperts, listUsers } from "./api";
import { ExpertEditor } from "./ExpertEditor";
import { ExpertSummary } from "./ExpertSummary";
import type { Expert, User } from "./types";

const REFETCH_DELAY_MS = 1000;

export function ExpertsTab({ hospitals, userId }: { hospitals: Hospital[] | null; userId: number | null }) {
  const { t, tv, number } = useI18n();
  const { client } = useSession();
  const id = useId();
  const [radiologists, setRadiologists] = useState<User[] | null>(null);
  const [experts, setExperts] = useState<Expert[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [reload, setReload] = useState(0);

  useEffect(() => {
    const controller = new AbortController();
    Promise.all([listUsers(client), listExperts(client, controller.signal)]).then(
      ([users, roster]) => {
        if (controller.signal.aborted) return;
        setRadiologists(users.filter((u) => u.role === "radiologist"));
        setExperts(roster);
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
  }, [client, reload]);

  // The load column follows the cases: refetch when cases move.
  const refetch = useMemo(() => debounce(() => setReload((n) => n + 1), REFETCH_DELAY_MS), []);
  useEffect(() => () => refetch.cancel(), [refetch]);
  useCaseEvents(useCallback(() => refetch.call(), [refetch]));

  const byUser = new Map((experts ?? []).map((e) => [e.user_id, e]));
  const selected = radiologists?.find((u) => u.id === userId) ?? null;
  const selectedExpert = selected ? (byUser.get(selected.id) ?? null) : null;
  const select = (user: number | null) => {
    navigate(user === null ? "/admin?tab=experts" : `/admin?tab=experts&user=${user}`);
  };

  return (
    <div className="admin-tab">
      <section aria-labelledby={`${id}-list`} className="card">
        <h2 id={`${id}-list`}>{t("admin.experts.title")}</h2>
        <p className="muted">{t("admin.experts.intro")}</p>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        {radiologists === null && !error && <p role="status">{t("app.loading")}</p>}
        {radiologists?.length === 0 && <p className="muted">{t("admin.experts.noRadiologists")}</p>}
        {radiologists && radiologists.length > 0 && (
          <div className="table-wrap">
            <table className="admin-table">
              <caption className="visually-hidden">{t("admin.experts.title")}</caption>
              <thead>
                <tr>
                  <th scope="col">{t("admin.expert.radiologist")}</th>
                  <th scope="col">{t("admin.expert.employment")}</th>
                  <th scope="col">{t("admin.expert.subspecialties")}</th>
                  <th scope="col">{t("admin.expert.credentials")}</th>
                  <th scope="col">{t("admin.expert.state")}</th>
                  <th scope="col" className="num">
                    {t("admin.expert.openCases")}
                  </th>
                  <th scope="col">
                    <span className="visually-hidden">{t("admin.col.actions")}</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {radiologists.map((u) => {
                  const expert = byUser.get(u.id);
                  const name = u.display_name || u.username;
                  return (
                    <tr key={u.id} className={u.id === userId ? "selected" : undefined}>
                      <td>
                        {name} <span className="muted mono">{u.username}</span>
                      </td>
                      {expert ? (
                        <>
                          <td>
                            {t(`admin.employment.${expert.employment}`)} ·{" "}
                            {t(`admin.qualification.${expert.qualification}`)}
                          </td>
                          <td>
                            {Object.entries(expert.subspecialties)
                              .map(([s, level]) => `${tv("subspecialty", s)} ${level}`)
                              .join(", ")}
                          </td>
                          <td>{expert.credentials.map((c) => c.hospital_code).join(", ") || t("admin.none")}</td>
                          <td>{tv("admin.state", expert.state)}</td>
                          <td className="num">{number(expert.open_cases)}</td>
                        </>
                      ) : (
                        <td colSpan={5} className="muted">
                          {t("admin.expert.noProfile")}
                        </td>
                      )}
                      <td>
                        <button
                          type="button"
                          className="secondary small"
                          aria-label={t(expert ? "admin.expert.editFor" : "admin.expert.createFor", { name })}
                          onClick={() => select(u.id === userId ? null : u.id)}
                        >
                          {t(expert ? "admin.expert.edit" : "admin.expert.create")}
                        </button>
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </section>

      {selected && radiologists && experts && (
        <ExpertEditor
          key={selected.id}
          user={selected}
          expert={selectedExpert}
          hospitals={hospitals ?? []}
          onSaved={(saved) => {
            setExperts((list) => [...(list ?? []).filter((e) => e.user_id !== saved.user_id), saved]);
          }}
          onClose={() => select(null)}
        />
      )}
      {selectedExpert && <ExpertSummary expert={selectedExpert} />}
    </div>
  );
}
