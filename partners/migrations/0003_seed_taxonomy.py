"""Seed the service types this network searches by, each with a stable code and its names in the
network's languages (en, es, fr, pt, ro, ru, th, zh, tl). Codes never change once published:
partners store them."""

from django.db import migrations

LANGUAGES = ("en", "es", "fr", "pt", "ro", "ru", "th", "zh", "tl")

TERMS = {
    "sti-testing": (
        "STI testing",
        "Pruebas de ITS",
        "Dépistage des IST",
        "Testagem de IST",
        "Testare ITS",
        "Тестирование на ИППП",
        "ตรวจโรคติดต่อทางเพศสัมพันธ์",
        "性传播感染检测",
        "Pagsusuri sa STI",
    ),
    "hiv-prep-pep": (
        "HIV PrEP/PEP",
        "PrEP/PEP para el VIH",
        "PrEP/PEP VIH",
        "PrEP/PEP para o VIH",
        "PrEP/PEP HIV",
        "ДКП/ПКП ВИЧ",
        "เพร็พ/เป๊ป ป้องกันเอชไอวี",
        "艾滋病暴露前/后预防（PrEP/PEP）",
        "HIV PrEP/PEP",
    ),
    "contraception": (
        "Contraception",
        "Anticoncepción",
        "Contraception",
        "Contraceção",
        "Contracepție",
        "Контрацепция",
        "การคุมกำเนิด",
        "避孕",
        "Kontrasepsyon",
    ),
    "abortion-reproductive-care": (
        "Abortion and reproductive care",
        "Aborto y atención reproductiva",
        "Avortement et santé reproductive",
        "Aborto e cuidados reprodutivos",
        "Avort și îngrijire reproductivă",
        "Аборт и репродуктивная помощь",
        "การยุติการตั้งครรภ์และอนามัยการเจริญพันธุ์",
        "堕胎与生殖保健",
        "Aborsyon at pangangalagang reproduktibo",
    ),
    "general-health": (
        "General health",
        "Salud general",
        "Santé générale",
        "Saúde geral",
        "Sănătate generală",
        "Общая медицинская помощь",
        "สุขภาพทั่วไป",
        "普通医疗",
        "Pangkalahatang kalusugan",
    ),
    "mental-health": (
        "Mental health",
        "Salud mental",
        "Santé mentale",
        "Saúde mental",
        "Sănătate mintală",
        "Психическое здоровье",
        "สุขภาพจิต",
        "心理健康",
        "Kalusugang pangkaisipan",
    ),
    "harm-reduction-supplies": (
        "Harm reduction supplies",
        "Material de reducción de daños",
        "Matériel de réduction des risques",
        "Material de redução de riscos",
        "Materiale de reducere a riscurilor",
        "Средства снижения вреда",
        "อุปกรณ์ลดอันตราย",
        "减害用品",
        "Mga gamit para sa harm reduction",
    ),
    "drug-checking": (
        "Drug checking",
        "Análisis de sustancias",
        "Analyse de drogues",
        "Análise de substâncias",
        "Testarea drogurilor",
        "Проверка веществ",
        "การตรวจสารเสพติด",
        "药物检测",
        "Pagsusuri ng droga",
    ),
    "legal-aid-criminal": (
        "Legal aid: criminal",
        "Asesoría legal: penal",
        "Aide juridique : pénal",
        "Apoio jurídico: penal",
        "Asistență juridică: penal",
        "Юридическая помощь: уголовные дела",
        "ความช่วยเหลือทางกฎหมาย: คดีอาญา",
        "法律援助：刑事",
        "Tulong legal: kriminal",
    ),
    "legal-aid-immigration": (
        "Legal aid: immigration",
        "Asesoría legal: inmigración",
        "Aide juridique : immigration",
        "Apoio jurídico: imigração",
        "Asistență juridică: imigrație",
        "Юридическая помощь: иммиграция",
        "ความช่วยเหลือทางกฎหมาย: การเข้าเมือง",
        "法律援助：移民",
        "Tulong legal: imigrasyon",
    ),
    "labour-rights": (
        "Labour rights",
        "Derechos laborales",
        "Droits du travail",
        "Direitos laborais",
        "Drepturile muncii",
        "Трудовые права",
        "สิทธิแรงงาน",
        "劳工权益",
        "Karapatan sa paggawa",
    ),
    "safe-reporting-violence": (
        "Safe reporting of violence",
        "Denuncia segura de violencia",
        "Signalement sécurisé des violences",
        "Denúncia segura de violência",
        "Raportarea în siguranță a violenței",
        "Безопасное сообщение о насилии",
        "การแจ้งเหตุความรุนแรงอย่างปลอดภัย",
        "安全举报暴力",
        "Ligtas na pag-uulat ng karahasan",
    ),
    "emergency-shelter": (
        "Emergency shelter",
        "Albergue de emergencia",
        "Hébergement d'urgence",
        "Abrigo de emergência",
        "Adăpost de urgență",
        "Экстренное убежище",
        "ที่พักพิงฉุกเฉิน",
        "紧急庇护所",
        "Pang-emerhensiyang tirahan",
    ),
    "housing": (
        "Housing",
        "Vivienda",
        "Logement",
        "Habitação",
        "Locuințe",
        "Жильё",
        "ที่อยู่อาศัย",
        "住房",
        "Pabahay",
    ),
    "food": (
        "Food",
        "Alimentación",
        "Alimentation",
        "Alimentação",
        "Alimente",
        "Питание",
        "อาหาร",
        "食物",
        "Pagkain",
    ),
    "financial-aid": (
        "Financial aid",
        "Ayuda económica",
        "Aide financière",
        "Apoio financeiro",
        "Ajutor financiar",
        "Финансовая помощь",
        "ความช่วยเหลือทางการเงิน",
        "经济援助",
        "Tulong pinansyal",
    ),
    "interpretation": (
        "Interpretation",
        "Interpretación",
        "Interprétariat",
        "Interpretação",
        "Interpretariat",
        "Устный перевод",
        "ล่ามแปลภาษา",
        "口译",
        "Interpretasyon",
    ),
    "peer-support": (
        "Peer support",
        "Apoyo entre pares",
        "Soutien par les pairs",
        "Apoio de pares",
        "Sprijin între egali",
        "Поддержка равных",
        "การสนับสนุนจากเพื่อนร่วมประสบการณ์",
        "同伴支持",
        "Suporta ng kapwa",
    ),
}


def seed(apps, schema_editor):
    TaxonomyTerm = apps.get_model("partners", "TaxonomyTerm")
    for code, names in TERMS.items():
        TaxonomyTerm.objects.update_or_create(
            code=code, defaults={"names": dict(zip(LANGUAGES, names, strict=True))}
        )


def unseed(apps, schema_editor):
    apps.get_model("partners", "TaxonomyTerm").objects.filter(code__in=TERMS).delete()


class Migration(migrations.Migration):
    dependencies = [("partners", "0002_directory_search")]

    operations = [migrations.RunPython(seed, unseed)]
