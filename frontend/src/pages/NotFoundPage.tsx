import { useI18n } from "../i18n/context";
import { linkClick } from "../router";

export function NotFoundPage() {
  const { t } = useI18n();
  return (
    <section className="page narrow-page">
      <h1>{t("notFound.title")}</h1>
      <p>{t("notFound.body")}</p>
      <p>
        <a href="/cases" onClick={linkClick("/cases")}>
          {t("notFound.back")}
        </a>
      </p>
    </section>
  );
}
