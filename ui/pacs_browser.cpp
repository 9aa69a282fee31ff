#include "ui/pacs_browser.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDateEdit>
#include <QDialogButtonBox>
#include <QDir>
#include <QFileDialog>
#include <QFormLayout>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QLabel>
#include <QLineEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSplitter>
#include <QStandardItemModel>
#include <QStandardPaths>
#include <QTableView>
#include <QVBoxLayout>
#include <cmath>

#include "app/pacs/pacs_config.h"
#include "ui/background_task.h"

#if defined(HILUM_HAVE_PACS) && HILUM_HAVE_PACS
#include "app/pacs/pacs_client.h"
#endif

namespace hilum::ui {

namespace {

constexpr int UidRole = Qt::UserRole + 1;

QString qs(const std::string& s) { return QString::fromStdString(s); }

QString displayDate(const std::string& da) {
  if (da.size() != 8) return qs(da);
  return qs(da.substr(0, 4) + "-" + da.substr(4, 2) + "-" + da.substr(6, 2));
}

QString displayName(const std::string& pn) {
  QString name = qs(pn);
  // FAMILY^GIVEN^MIDDLE -> "FAMILY, GIVEN MIDDLE"
  const QStringList parts = name.split(QLatin1Char('^'));
  if (parts.size() < 2) return name.trimmed();
  QStringList given = parts.mid(1);
  given.removeAll(QString());
  return (parts[0] + QStringLiteral(", ") + given.join(QLatin1Char(' '))).trimmed();
}

QStandardItem* item(const QString& text, const QString& uid = {}) {
  auto* i = new QStandardItem(text);
  i->setEditable(false);
  if (!uid.isEmpty()) i->setData(uid, UidRole);
  return i;
}

QString count(int n) { return n < 0 ? QString() : QString::number(n); }

// Free text becomes a prefix match unless the user wrote DICOM wildcards.
std::string nameKey(const QString& text) {
  QString t = text.trimmed();
  if (t.isEmpty()) return {};
  t.replace(QLatin1Char(','), QLatin1Char('^')).replace(QStringLiteral("^ "), QStringLiteral("^"));
  if (!t.contains(QLatin1Char('*')) && !t.contains(QLatin1Char('?'))) t += QLatin1Char('*');
  return t.toStdString();
}

QTableView* makeTable(QStandardItemModel* model, const QString& name, QWidget* parent) {
  auto* v = new QTableView(parent);
  v->setObjectName(name);
  v->setModel(model);
  v->setSelectionBehavior(QAbstractItemView::SelectRows);
  v->setSelectionMode(QAbstractItemView::SingleSelection);
  v->setEditTriggers(QAbstractItemView::NoEditTriggers);
  v->verticalHeader()->hide();
  v->horizontalHeader()->setStretchLastSection(true);
  v->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  v->setAlternatingRowColors(true);
  return v;
}

}  // namespace

bool pacsAvailable() {
#if defined(HILUM_HAVE_PACS) && HILUM_HAVE_PACS
  return true;
#else
  return false;
#endif
}

QString defaultPacsCacheDir() {
  return QDir::cleanPath(QStandardPaths::writableLocation(QStandardPaths::GenericCacheLocation) +
                         QStringLiteral("/hilum/pacs"));
}

PacsBrowser::PacsBrowser(const QString& cacheDir, const QString& configPath, QWidget* parent)
    : QDialog(parent), m_cacheDir(cacheDir.isEmpty() ? defaultPacsCacheDir() : cacheDir) {
  setObjectName(QStringLiteral("pacsBrowser"));
  setWindowTitle(tr("Open from PACS"));
  m_task = new BackgroundTask(this);

  m_node = new QComboBox(this);
  m_node->setObjectName(QStringLiteral("pacsNode"));
  m_configLabel = new QLabel(this);
  m_configLabel->setWordWrap(true);
  m_configLabel->setStyleSheet(QStringLiteral("color: #a8a8a8;"));
  auto* configButton = new QPushButton(tr("Configuration…"), this);
  configButton->setToolTip(tr("Read the PACS nodes from another pacs.json"));
  connect(configButton, &QPushButton::clicked, this, [this] {
    const QString path =
        QFileDialog::getOpenFileName(this, tr("PACS configuration"), {}, tr("JSON (*.json);;All files (*)"));
    if (!path.isEmpty()) this->loadConfig(path);
  });

  m_patientName = new QLineEdit(this);
  m_patientName->setObjectName(QStringLiteral("pacsPatientName"));
  m_patientName->setPlaceholderText(tr("Family name, given name (prefix; * and ? as wildcards)"));
  m_patientId = new QLineEdit(this);
  m_patientId->setObjectName(QStringLiteral("pacsPatientId"));
  m_patientId->setPlaceholderText(tr("Exact ID, or with * and ?"));
  m_useFrom = new QCheckBox(tr("From"), this);
  m_useTo = new QCheckBox(tr("to"), this);
  m_from = new QDateEdit(QDate::currentDate().addYears(-1), this);
  m_to = new QDateEdit(QDate::currentDate(), this);
  for (QDateEdit* d : {m_from, m_to}) {
    d->setCalendarPopup(true);
    d->setDisplayFormat(QStringLiteral("yyyy-MM-dd"));
    d->setEnabled(false);
  }
  connect(m_useFrom, &QCheckBox::toggled, m_from, &QWidget::setEnabled);
  connect(m_useTo, &QCheckBox::toggled, m_to, &QWidget::setEnabled);
  m_modality = new QComboBox(this);
  m_modality->setObjectName(QStringLiteral("pacsModality"));
  m_modality->setEditable(true);
  m_modality->addItem(tr("Any"), QString());
  for (const char* m : {"CT", "MR", "PT", "CR", "DX", "SR", "DOC"})
    m_modality->addItem(QString::fromLatin1(m), QString::fromLatin1(m));
  m_modality->setCurrentIndex(1);  // CT: what Hilum reads
  m_search = new QPushButton(tr("&Search"), this);
  m_search->setObjectName(QStringLiteral("pacsSearch"));
  m_search->setDefault(true);

  auto* form = new QGridLayout;
  form->addWidget(new QLabel(tr("PACS"), this), 0, 0);
  auto* nodeRow = new QHBoxLayout;
  nodeRow->addWidget(m_node, 1);
  nodeRow->addWidget(configButton);
  form->addLayout(nodeRow, 0, 1, 1, 3);
  form->addWidget(m_configLabel, 1, 1, 1, 3);
  form->addWidget(new QLabel(tr("Patient name"), this), 2, 0);
  form->addWidget(m_patientName, 2, 1);
  form->addWidget(new QLabel(tr("Patient ID"), this), 2, 2);
  form->addWidget(m_patientId, 2, 3);
  auto* dates = new QHBoxLayout;
  dates->addWidget(m_useFrom);
  dates->addWidget(m_from);
  dates->addWidget(m_useTo);
  dates->addWidget(m_to);
  dates->addStretch(1);
  form->addWidget(new QLabel(tr("Study date"), this), 3, 0);
  form->addLayout(dates, 3, 1);
  form->addWidget(new QLabel(tr("Modality"), this), 3, 2);
  auto* modalityRow = new QHBoxLayout;
  modalityRow->addWidget(m_modality, 1);
  modalityRow->addWidget(m_search);
  form->addLayout(modalityRow, 3, 3);
  form->setColumnStretch(1, 1);
  form->setColumnStretch(3, 1);

  m_studies = new QStandardItemModel(this);
  m_studies->setHorizontalHeaderLabels({tr("Patient"), tr("Patient ID"), tr("Birth date"), tr("Study date"),
                                        tr("Description"), tr("Modalities"), tr("Accession"), tr("Series"),
                                        tr("Images")});
  m_series = new QStandardItemModel(this);
  m_series->setHorizontalHeaderLabels({tr("No."), tr("Modality"), tr("Description"), tr("Images")});
  m_studyView = makeTable(m_studies, QStringLiteral("pacsStudies"), this);
  m_seriesView = makeTable(m_series, QStringLiteral("pacsSeries"), this);
  auto* split = new QSplitter(Qt::Vertical, this);
  split->addWidget(m_studyView);
  split->addWidget(m_seriesView);
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 2);

  m_method = new QComboBox(this);
  m_method->setObjectName(QStringLiteral("pacsMethod"));
  m_method->addItem(tr("C-GET"), QStringLiteral("get"));
  m_method->addItem(tr("C-MOVE"), QStringLiteral("move"));
  m_method->setToolTip(
      tr("C-GET: the PACS sends the images on Hilum's own connection.\n"
         "C-MOVE: the PACS sends them to Hilum's storage port (the PACS must know Hilum's AE title there)."));
  m_retrieve = new QPushButton(tr("&Retrieve and Open"), this);
  m_retrieve->setObjectName(QStringLiteral("pacsRetrieve"));
  m_cancel = new QPushButton(tr("Cancel"), this);
  m_cancel->setObjectName(QStringLiteral("pacsCancel"));
  m_progress = new QProgressBar(this);
  m_progress->setObjectName(QStringLiteral("pacsProgress"));
  m_progress->setRange(0, 1000);
  m_progress->setTextVisible(false);
  m_progress->hide();
  m_status = new QLabel(this);
  m_status->setObjectName(QStringLiteral("pacsStatus"));
  m_status->setWordWrap(true);
  m_status->setTextInteractionFlags(Qt::TextSelectableByMouse);
  auto* close = new QPushButton(tr("Close"), this);
  connect(close, &QPushButton::clicked, this, &QDialog::reject);

  auto* actions = new QHBoxLayout;
  actions->addWidget(new QLabel(tr("Retrieve by"), this));
  actions->addWidget(m_method);
  actions->addWidget(m_progress, 1);
  actions->addStretch(0);
  actions->addWidget(m_cancel);
  actions->addWidget(m_retrieve);
  actions->addWidget(close);

  auto* layout = new QVBoxLayout(this);
  layout->addLayout(form);
  layout->addWidget(split, 1);
  layout->addWidget(m_status);
  layout->addLayout(actions);
  resize(980, 640);

  connect(m_search, &QPushButton::clicked, this, &PacsBrowser::search);
  for (QLineEdit* e : {m_patientName, m_patientId})
    connect(e, &QLineEdit::returnPressed, this, &PacsBrowser::search);
  connect(m_retrieve, &QPushButton::clicked, this, &PacsBrowser::retrieve);
  connect(m_cancel, &QPushButton::clicked, this, &PacsBrowser::cancel);
  connect(m_studyView->selectionModel(), &QItemSelectionModel::currentRowChanged, this, [this] {
    listSeries();
    updateButtons();
  });
  connect(m_seriesView->selectionModel(), &QItemSelectionModel::currentRowChanged, this,
          &PacsBrowser::updateButtons);
  connect(m_studyView, &QTableView::doubleClicked, this, &PacsBrowser::retrieve);
  connect(m_seriesView, &QTableView::doubleClicked, this, &PacsBrowser::retrieve);
  connect(m_task, &BackgroundTask::progressed, this, [this](double fraction, const QString& stage) {
    m_progress->setValue(static_cast<int>(std::lround(fraction * 1000)));
    if (!stage.isEmpty()) m_progress->setToolTip(stage);
  });
  connect(m_task, &BackgroundTask::started, this, [this] {
    m_progress->setValue(0);
    m_progress->show();
    updateButtons();
  });
  connect(m_task, &BackgroundTask::finished, this, [this] {
    m_progress->hide();
    updateButtons();
  });

  if (!pacsAvailable()) {
    showStatus(tr("This build of Hilum has no PACS client (it needs the imaging build with DCMTK)."), true);
  } else if (!configPath.isEmpty()) {
    loadConfig(configPath);
  } else if (auto path = pacs::default_config_path()) {
    loadConfig(QString::fromStdString(path->string()));
  } else {
    m_configLabel->setText(
        tr("No PACS configured: describe the nodes in ~/.config/hilum/pacs.json or point "
           "HILUM_PACS_CONFIG at a pacs.json (see docs/pacs.md), or choose one with "
           "Configuration…"));
  }
  updateButtons();
}

PacsBrowser::~PacsBrowser() {
  m_task->cancel();
  m_task->waitForFinished();
}

bool PacsBrowser::loadConfig(const QString& path) {
#if defined(HILUM_HAVE_PACS) && HILUM_HAVE_PACS
  Result<pacs::Config> config = pacs::load_config(path.toStdString());
  m_node->clear();
  if (!config.ok()) {
    m_config.reset();
    m_configLabel->setText(tr("No usable PACS configuration."));
    showStatus(qs(config.error().message()), true);
    updateButtons();
    return false;
  }
  m_config = std::make_unique<pacs::Config>(std::move(config).value());
  for (const auto& [name, node] : m_config->nodes) {
    m_node->addItem(QStringLiteral("%1 — %2").arg(qs(name), qs(node.address())), qs(name));
  }
  if (auto d = m_config->node(""); d.ok()) m_node->setCurrentIndex(m_node->findData(qs(d->name)));
  m_configLabel->setText(tr("Nodes from %1").arg(QDir::toNativeSeparators(path)));
  if (m_config->nodes.empty()) showStatus(tr("%1 lists no PACS node.").arg(path), true);
  updateButtons();
  return !m_config->nodes.empty();
#else
  (void)path;
  return false;
#endif
}

bool PacsBrowser::isBusy() const { return m_task->isRunning(); }

QString PacsBrowser::statusText() const { return m_status->text(); }

void PacsBrowser::showStatus(const QString& text, bool error) {
  m_status->setText(text);
  m_status->setStyleSheet(error ? QStringLiteral("color: #ff7a6e; font-weight: bold;") : QString());
}

std::optional<pacs::Node> PacsBrowser::currentNode() const {
  if (!m_config || m_node->currentIndex() < 0) return std::nullopt;
  auto it = m_config->nodes.find(m_node->currentData().toString().toStdString());
  if (it == m_config->nodes.end()) return std::nullopt;
  return it->second;
}

QString PacsBrowser::selectedStudyUid() const {
  const QModelIndex i = m_studyView->currentIndex();
  return i.isValid() ? m_studies->item(i.row(), 0)->data(UidRole).toString() : QString();
}

QString PacsBrowser::selectedSeriesUid() const {
  const QModelIndex i = m_seriesView->currentIndex();
  return i.isValid() ? m_series->item(i.row(), 0)->data(UidRole).toString() : QString();
}

void PacsBrowser::updateButtons() {
  const bool busy = m_task->isRunning();
  const bool retrieving = busy && m_taskKind == QStringLiteral("retrieve");
  const bool node = currentNode().has_value();
  m_search->setEnabled(node && !retrieving);
  m_retrieve->setEnabled(node && !retrieving && !selectedStudyUid().isEmpty());
  m_retrieve->setText(selectedSeriesUid().isEmpty() ? tr("&Retrieve Study and Open")
                                                    : tr("&Retrieve Series and Open"));
  m_cancel->setEnabled(busy);
}

void PacsBrowser::cancel() { m_task->cancel(); }

void PacsBrowser::search() {
#if defined(HILUM_HAVE_PACS) && HILUM_HAVE_PACS
  const auto node = currentNode();
  if (!node || (m_task->isRunning() && m_taskKind == QStringLiteral("retrieve"))) return;
  pacs::Query q;
  q.level = pacs::QueryLevel::kStudy;
  q.patient_name = nameKey(m_patientName->text());
  q.patient_id = m_patientId->text().trimmed().toStdString();
  const QString from =
      m_useFrom->isChecked() ? m_from->date().toString(QStringLiteral("yyyyMMdd")) : QString();
  const QString to = m_useTo->isChecked() ? m_to->date().toString(QStringLiteral("yyyyMMdd")) : QString();
  if (!from.isEmpty() && !to.isEmpty() && m_from->date() > m_to->date()) {
    showStatus(tr("The start date is after the end date."), true);
    emit searchFinished(false);
    return;
  }
  if (!from.isEmpty() || !to.isEmpty())
    q.study_date = (from == to ? from : from + QLatin1Char('-') + to).toStdString();
  const int m = m_modality->findText(m_modality->currentText());
  q.modality = (m >= 0 ? m_modality->itemData(m).toString() : m_modality->currentText().trimmed().toUpper())
                   .toStdString();
  m_studies->removeRows(0, m_studies->rowCount());
  m_series->removeRows(0, m_series->rowCount());
  showStatus(tr("Searching %1…").arg(qs(node->address())));
  m_taskKind = QStringLiteral("search");
  m_task->run<std::vector<pacs::Match>>(
      tr("Searching"),
      [node = *node, q](Progress& p) {
        pacs::PacsClient client(node);
        return client.find(q, p);
      },
      [this](Result<std::vector<pacs::Match>> result) {
        if (!result.ok()) {
          showStatus(result.error().kind() == ErrorKind::kCancelled ? tr("Search cancelled.")
                                                                    : qs(result.error().message()),
                     result.error().kind() != ErrorKind::kCancelled);
          emit searchFinished(false);
          return;
        }
        for (const pacs::Match& s : *result) {
          const QString uid = qs(s.study_uid);
          m_studies->appendRow(
              {item(displayName(s.patient_name), uid), item(qs(s.patient_id)),
               item(displayDate(s.patient_birth_date)), item(displayDate(s.study_date)),
               item(qs(s.study_description)), item(qs(s.modalities_in_study).replace('\\', ", ")),
               item(qs(s.accession_number)), item(count(s.study_series)), item(count(s.study_instances))});
        }
        showStatus(result->empty() ? tr("No study matches.")
                                   : tr("%n study(ies) found.", nullptr, static_cast<int>(result->size())));
        if (!result->empty()) m_studyView->selectRow(0);
        updateButtons();
        emit searchFinished(true);
      });
#endif
}

void PacsBrowser::listSeries() {
#if defined(HILUM_HAVE_PACS) && HILUM_HAVE_PACS
  m_series->removeRows(0, m_series->rowCount());
  const auto node = currentNode();
  const QString study = selectedStudyUid();
  if (!node || study.isEmpty()) return;
  pacs::Query q;
  q.level = pacs::QueryLevel::kSeries;
  q.study_uid = study.toStdString();
  m_taskKind = QStringLiteral("series");
  m_task->run<std::vector<pacs::Match>>(
      tr("Listing series"),
      [node = *node, q](Progress& p) {
        pacs::PacsClient client(node);
        return client.find(q, p);
      },
      [this, study](Result<std::vector<pacs::Match>> result) {
        if (study != selectedStudyUid()) return;  // another study was selected meanwhile
        if (!result.ok()) {
          if (result.error().kind() != ErrorKind::kCancelled) showStatus(qs(result.error().message()), true);
          emit seriesListed(false);
          return;
        }
        for (const pacs::Match& s : *result) {
          m_series->appendRow(
              {item(s.series_number < 0 ? QString() : QString::number(s.series_number), qs(s.series_uid)),
               item(qs(s.modality)), item(qs(s.series_description)), item(count(s.series_instances))});
        }
        updateButtons();
        emit seriesListed(true);
      });
#endif
}

void PacsBrowser::retrieve() {
#if defined(HILUM_HAVE_PACS) && HILUM_HAVE_PACS
  const auto node = currentNode();
  const QString study = selectedStudyUid();
  if (!node || study.isEmpty()) return;
  if (m_task->isRunning()) {
    if (m_taskKind == QStringLiteral("retrieve")) return;
    m_task->cancel();  // a series listing gives way to the retrieve
  }
  pacs::RetrieveRequest request;
  request.study_uid = study.toStdString();
  const QString series = selectedSeriesUid();
  request.series_uid = series.toStdString();
  const bool move = m_method->currentData().toString() == QStringLiteral("move");
  const std::filesystem::path out = m_cacheDir.toStdString();
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  if (ec) {
    showStatus(tr("Cannot create the cache folder %1 (%2).").arg(m_cacheDir, qs(ec.message())), true);
    emit retrieveFinished(false);
    return;
  }
  showStatus(tr("Retrieving from %1 by %2…").arg(qs(node->address()), move ? tr("C-MOVE") : tr("C-GET")));
  m_taskKind = QStringLiteral("retrieve");
  m_task->run<pacs::RetrieveResult>(
      tr("Retrieving"),
      [node = *node, request, out, move](Progress& p) {
        pacs::PacsClient client(node);
        return move ? client.move(request, out, p) : client.get(request, out, p);
      },
      [this, series](Result<pacs::RetrieveResult> result) {
        if (!result.ok()) {
          const bool cancelled = result.error().kind() == ErrorKind::kCancelled;
          showStatus(cancelled ? tr("Retrieve cancelled; nothing was kept.") : qs(result.error().message()),
                     !cancelled);
          emit retrieveFinished(false);
          return;
        }
        QString text = tr("Retrieved %n instance(s).", nullptr, static_cast<int>(result->instances.size()));
        if (result->failed > 0) text += tr(" %n failed.", nullptr, result->failed);
        showStatus(text, result->failed > 0);
        emit retrieveFinished(true);
        emit studyRetrieved(QString::fromStdString(result->study_dir.string()), series);
      });
  updateButtons();
#endif
}

}  // namespace hilum::ui
