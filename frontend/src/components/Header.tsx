import { useI18n } from "../i18n/context";
import { linkClick, type Route } from "../router";
import { canAdminister, canControl, canRead, canSend, useSession } from "../session";
import { LanguageSwitch } from "./LanguageSwitch";

export function Header({ route }: { route: Route }) {
  const { t, tv } = useI18n();
  const { user, signOut } = useSession();
  const links: { path: string; label: string; current: boolean }[] = [];
  if (canRead(user.role)) {
    links.push({
      path: "/reading",
      label: t("reading.title"),
      current: route.name === "worklist" || route.name === "reading",
    });
  }
  if (canControl(user.role)) {
    links.push({ path: "/control", label: t("control.title"), current: route.name === "control" });
  }
  if (canSend(user.role)) {
    links.push({ path: "/upload", label: t("nav.upload"), current: route.name === "upload" });
  }
  links.push({ path: "/cases", label: t("nav.cases"), current: route.name === "cases" });
  if (canAdminister(user.role)) {
    links.push({ path: "/admin", label: t("admin.title"), current: route.name === "admin" });
  }

  return (
    <header className="app-header">
      <div className="brand">
        <span className="brand-name">{t("app.name")}</span>
        <span className="brand-tagline">{t("app.tagline")}</span>
      </div>
      <nav aria-label={t("nav.main")} className="main-nav">
        <ul>
          {links.map((link) => (
            <li key={link.path}>
              <a
                href={link.path}
                aria-current={link.current ? "page" : undefined}
                onClick={linkClick(link.path)}
              >
                {link.label}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <div className="header-tools">
        <span className="user" title={t("nav.signedInAs", { name: user.username })}>
          <span className="user-name">{user.display_name || user.username}</span>
          <span className="user-role" title={user.hospital_name ?? undefined}>
            {tv("role", user.role)}
            {user.hospital_code && ` · ${user.hospital_code}`}
          </span>
        </span>
        <LanguageSwitch />
        <button type="button" className="secondary" onClick={signOut}>
          {t("nav.signOut")}
        </button>
      </div>
    </header>
  );
}
