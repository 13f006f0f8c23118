import { useCallback, useEffect, useState } from "react";

import "../admin/admin.css";
import type { Hospital } from "../api/types";
import { listHospitals } from "../admin/api";
import { ExpertsTab } from "../admin/ExpertsTab";
import { HospitalsTab } from "../admin/HospitalsTab";
import { adminPath, parseAdminQuery, TABS } from "../admin/query";
import { UsersTab } from "../admin/UsersTab";
import { errorText } from "../errors";
import { useI18n } from "../i18n/context";
import { linkClick, useSearch } from "../router";
import { canAdminister, useSession } from "../session";

export function AdminPage() {
  const { t } = useI18n();
  const { client, user } = useSession();
  const query = parseAdminQuery(useSearch());
  const [hospitals, setHospitals] = useState<Hospital[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [reload, setReload] = useState(0);
  const allowed = canAdminister(user.role);

  useEffect(() => {
    if (!allowed) return;
    let live = true;
    listHospitals(client).then(
      (list) => {
        if (!live) return;
        setHospitals(list);
        setError(null);
      },
      (e: unknown) => {
        if (live) setError(errorText(e, t));
      },
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, reload, allowed]);

  const changed = useCallback(() => setReload((n) => n + 1), []);

  if (!allowed) {
    return (
      <section className="page">
        <h1>{t("admin.title")}</h1>
        <p className="notice">{t("admin.notAllowed")}</p>
      </section>
    );
  }

  return (
    <section className="page admin-page" aria-labelledby="admin-title">
      <div className="page-head">
        <h1 id="admin-title">{t("admin.title")}</h1>
      </div>
      <nav className="admin-tabs" aria-label={t("admin.sections")}>
        <ul>
          {TABS.map((tab) => {
            const path = adminPath(tab);
            return (
              <li key={tab}>
                <a href={path} onClick={linkClick(path)} aria-current={query.tab === tab ? "page" : undefined}>
                  {t(`admin.tab.${tab}`)}
                </a>
              </li>
            );
          })}
        </ul>
      </nav>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {query.tab === "hospitals" && <HospitalsTab hospitals={hospitals} onChanged={changed} />}
      {query.tab === "users" && <UsersTab hospitals={hospitals} />}
      {query.tab === "experts" && <ExpertsTab hospitals={hospitals} userId={query.userId} />}
    </section>
  );
}
