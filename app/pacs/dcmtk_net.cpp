#include "app/pacs/dcmtk_net.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <mutex>

#include "dcmtk/dcmdata/dcostrmb.h"
#include "dcmtk/dcmnet/diutil.h"
#include "dcmtk/dcmnet/dul.h"
#include "dcmtk/oflog/oflog.h"
#include "model/file_io.h"

namespace hilum::pacs::detail {

void init_dcmtk() {
  static std::once_flag once;
  std::call_once(once, [] {
    // DCMTK's debug output dumps whole datasets (patient names and IDs): keep it off.
    OFLog::configure(OFLogger::OFF_LOG_LEVEL);
    DcmTLSTransportLayer::initializeOpenSSL();
  });
}

const std::vector<std::string>& storage_sop_classes() {
  static const std::vector<std::string> classes = {
      UID_CTImageStorage,
      UID_EnhancedCTImageStorage,
      UID_MRImageStorage,
      UID_EnhancedMRImageStorage,
      UID_PositronEmissionTomographyImageStorage,
      UID_SecondaryCaptureImageStorage,
      UID_MultiframeGrayscaleByteSecondaryCaptureImageStorage,
      UID_MultiframeGrayscaleWordSecondaryCaptureImageStorage,
      UID_MultiframeTrueColorSecondaryCaptureImageStorage,
      UID_DigitalXRayImageStorageForPresentation,
      UID_ComputedRadiographyImageStorage,
      UID_BasicTextSRStorage,
      UID_EnhancedSRStorage,
      UID_ComprehensiveSRStorage,
      UID_Comprehensive3DSRStorage,
      UID_ExtensibleSRStorage,
      UID_ChestCADSRStorage,
      UID_XRayRadiationDoseSRStorage,
      UID_KeyObjectSelectionDocumentStorage,
      UID_EncapsulatedPDFStorage,
      UID_GrayscaleSoftcopyPresentationStateStorage,
      UID_SegmentationStorage,
      UID_RTStructureSetStorage,
  };
  return classes;
}

OFList<OFString> uncompressed_transfer_syntaxes() {
  OFList<OFString> ts;
  ts.push_back(UID_LittleEndianExplicitTransferSyntax);
  ts.push_back(UID_LittleEndianImplicitTransferSyntax);
  return ts;
}

OFList<OFString> receive_transfer_syntaxes() {
  OFList<OFString> ts = uncompressed_transfer_syntaxes();
  ts.push_back(UID_JPEGLSLosslessTransferSyntax);
  ts.push_back(UID_JPEG2000LosslessOnlyTransferSyntax);
  ts.push_back(UID_JPEGProcess14SV1TransferSyntax);
  ts.push_back(UID_JPEGProcess14TransferSyntax);
  ts.push_back(UID_RLELosslessTransferSyntax);
  ts.push_back(UID_DeflatedExplicitVRLittleEndianTransferSyntax);
  return ts;
}

Result<std::unique_ptr<DcmTLSTransportLayer>> make_tls_layer(const Tls& tls, T_ASC_NetworkRole role,
                                                             const std::string& what) {
  init_dcmtk();
  auto layer = std::make_unique<DcmTLSTransportLayer>(role, nullptr, OFFalse);
  if (!*layer) return internal_error(what + ": TLS: OpenSSL could not be initialised");
  OFCondition c = layer->setTLSProfile(TSP_Profile_BCP195);
  if (c.good()) c = layer->activateCipherSuites();
  if (c.bad())
    return internal_error(what + ": TLS: cannot set up the cipher suites (" + std::string(c.text()) + ")");
  if (!tls.ca_file.empty()) {
    c = layer->addTrustedCertificateFile(tls.ca_file.c_str(), DCF_Filetype_PEM);
    if (c.bad())
      return bad_input(what + ": TLS: " + tls.ca_file.string() + ": not a PEM certificate (" + c.text() +
                       ")");
  }
  if (!tls.cert_file.empty()) {
    c = layer->setPrivateKeyFile(tls.key_file.c_str(), DCF_Filetype_PEM);
    if (c.bad())
      return bad_input(what + ": TLS: " + tls.key_file.string() + ": not a PEM private key (" + c.text() +
                       ")");
    c = layer->setCertificateFile(tls.cert_file.c_str(), DCF_Filetype_PEM);
    if (c.bad())
      return bad_input(what + ": TLS: " + tls.cert_file.string() + ": not a PEM certificate (" + c.text() +
                       ")");
    if (!layer->checkPrivateKeyMatchesCertificate()) {
      return bad_input(what + ": TLS: the key " + tls.key_file.string() + " does not match the certificate " +
                       tls.cert_file.string());
    }
  } else if (role == NET_ACCEPTOR) {
    return bad_input(what + ": TLS: a storage SCP needs a certificate and key (--tls-cert, --tls-key)");
  }
  if (!tls.verify_peer) {
    layer->setCertificateVerification(DCV_ignoreCertificate);
  } else if (role == NET_ACCEPTOR) {
    // Clients must show a certificate signed by the CA when one is configured.
    layer->setCertificateVerification(tls.ca_file.empty() ? DCV_ignoreCertificate : DCV_requireCertificate);
  } else {
    layer->setCertificateVerification(DCV_requireCertificate);
  }
  return layer;
}

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// The rejection reason, learned from a second, minimal association request.
std::string rejection_reason(const Node& node, DcmTransportLayer* tls) {
  T_ASC_Network* net = nullptr;
  if (ASC_initializeNetwork(NET_REQUESTOR, 0, node.timeouts.acse_s, &net).bad()) return "";
  T_ASC_Parameters* params = nullptr;
  std::string reason;
  if (ASC_createAssociationParameters(&params, node.max_pdu).good()) {
    ASC_setAPTitles(params, node.calling_ae.c_str(), node.ae_title.c_str(), nullptr);
    const std::string peer = node.host + ":" + std::to_string(node.port);
    ASC_setPresentationAddresses(params, OFStandard::getHostName().c_str(), peer.c_str());
    const char* syntaxes[] = {UID_LittleEndianExplicitTransferSyntax, UID_LittleEndianImplicitTransferSyntax};
    ASC_addPresentationContext(params, 1, UID_VerificationSOPClass, syntaxes, 2);
    bool ok = true;
    if (tls) {
      ok = ASC_setTransportLayer(net, tls, 0).good() && ASC_setTransportLayerType(params, OFTrue).good();
    }
    T_ASC_Association* assoc = nullptr;
    if (ok) {
      OFCondition c = ASC_requestAssociation(net, params, &assoc);
      if (c == DUL_ASSOCIATIONREJECTED) {
        T_ASC_RejectParameters rej;
        ASC_getRejectParameters(params, &rej);
        switch (rej.reason) {
          case ASC_REASON_SU_CALLEDAETITLENOTRECOGNIZED:
            reason = "called AE title '" + node.ae_title + "' not recognized by the PACS";
            break;
          case ASC_REASON_SU_CALLINGAETITLENOTRECOGNIZED:
            reason = "calling AE title '" + node.calling_ae +
                     "' not recognized (the PACS does not know Hilum under this AE title)";
            break;
          case ASC_REASON_SU_APPCONTEXTNAMENOTSUPPORTED:
            reason = "application context not supported";
            break;
          case ASC_REASON_SP_PRES_TEMPORARYCONGESTION:
            reason = "the PACS is congested (try again later)";
            break;
          case ASC_REASON_SP_PRES_LOCALLIMITEXCEEDED:
            reason = "the PACS has too many associations open (try again later)";
            break;
          default:
            reason = "no reason given";
            break;
        }
        reason += rej.result == ASC_RESULT_REJECTEDTRANSIENT ? ", transient" : ", permanent";
      } else if (c.good()) {
        ASC_releaseAssociation(assoc);
        reason = "accepted on a second try with only the verification service";
      }
    }
    if (assoc) {
      ASC_destroyAssociationParameters(&params);
      assoc->params = nullptr;
      ASC_destroyAssociation(&assoc);
    } else if (params) {
      ASC_destroyAssociationParameters(&params);
    }
  }
  ASC_dropNetwork(&net);
  return reason;
}

}  // namespace

Error association_error(const Node& node, const OFCondition& cond, DcmTransportLayer* tls) {
  const std::string where = "PACS " + node.address();
  if (cond == DUL_ASSOCIATIONREJECTED) {
    std::string reason = rejection_reason(node, tls);
    if (reason.empty()) reason = "reason unknown";
    return bad_input(where + ": association rejected (" + reason +
                     "); check the AE titles in the PACS configuration");
  }
  if (cond == NET_EC_NoAcceptablePresentationContexts) {
    return bad_input(where +
                     ": association accepted but none of the proposed services (presentation contexts) "
                     "was; the PACS does not offer this service to " +
                     node.calling_ae);
  }
  if (cond == DUL_READTIMEOUT) {
    return internal_error(where + ": no answer to the association request within " +
                          std::to_string(node.timeouts.acse_s) + " s (is this a DICOM port?)");
  }
  const std::string text = lower(cond.text());
  if (text.find("unrecognized pdu") != std::string::npos || text.find("illegal pdu") != std::string::npos) {
    return internal_error(where + ": the server on port " + std::to_string(node.port) +
                          " does not speak DICOM (wrong port? an HTTP server?)");
  }
  if (text.find("refused") != std::string::npos) {
    return internal_error(where + ": connection refused (nothing listens on port " +
                          std::to_string(node.port) + " at " + node.host + ")");
  }
  if (text.find("unknown host") != std::string::npos || text.find("name or service") != std::string::npos ||
      text.find("resolve") != std::string::npos) {
    return bad_input(where + ": unknown host '" + node.host + "'");
  }
  if (text.find("unreachable") != std::string::npos || text.find("no route") != std::string::npos) {
    return internal_error(where + ": host unreachable");
  }
  if (text.find("timed out") != std::string::npos || text.find("timeout") != std::string::npos) {
    return internal_error(where + ": no connection within " + std::to_string(node.timeouts.connect_s) +
                          " s (host unreachable, or a firewall drops the connection)");
  }
  if (cond == DUL_PEERABORTEDASSOCIATION || cond == DUL_NETWORKCLOSED || cond == DUL_UNEXPECTEDPDU ||
      cond == DUL_ILLEGALPDU) {
    std::string hint =
        tls ? " (TLS handshake failed? check the certificates)" : " (does the PACS expect TLS?)";
    return internal_error(where + ": the connection was closed during association negotiation" + hint);
  }
  std::string t = cond.text();
  for (char& c : t) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return internal_error(where + ": association failed (" + t + ")");
}

Error dimse_error(const Node& node, const std::string& operation, const OFCondition& cond,
                  int dimse_timeout_s) {
  const std::string where = "PACS " + node.address() + ": " + operation;
  if (cond == DIMSE_NODATAAVAILABLE || cond == DUL_READTIMEOUT) {
    return internal_error(where + ": no answer within " + std::to_string(dimse_timeout_s) +
                          " s (DIMSE timeout)");
  }
  if (cond == DUL_PEERABORTEDASSOCIATION) {
    // Orthanc and others accept the association from any AE title but abort it
    // when an unknown one asks for a query or retrieve.
    return internal_error(where + ": the PACS aborted the association (does it know Hilum's AE title '" +
                          node.calling_ae +
                          "' at this host? Queries and retrieves are often limited to known AEs)");
  }
  if (cond == DUL_PEERREQUESTEDRELEASE) return internal_error(where + ": the PACS closed the association");
  if (cond == DIMSE_NOVALIDPRESENTATIONCONTEXTID) {
    return internal_error(where + ": the PACS did not accept the service (no presentation context)");
  }
  std::string t = cond.text();
  for (char& c : t) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return internal_error(where + ": " + t);
}

std::string status_text(uint16_t status) {
  const char* meaning = "unknown status";
  if (status == 0x0000) {
    meaning = "Success";
  } else if (status == 0xFF00 || status == 0xFF01) {
    meaning = "Pending";
  } else if (status == 0xFE00) {
    meaning = "Cancelled";
  } else if (status == 0xB000) {
    meaning = "Warning: sub-operations complete, one or more failures or warnings";
  } else if (status == 0xB007) {
    meaning = "Warning: data set does not match SOP class";
  } else if (status == 0xB006) {
    meaning = "Warning: elements discarded";
  } else if (status == 0x0107) {
    meaning = "Warning: attribute list error";
  } else if (status == 0x0122) {
    meaning = "Refused: SOP class not supported";
  } else if (status == 0x0124) {
    meaning = "Refused: not authorized";
  } else if (status == 0x0211) {
    meaning = "Unrecognized operation";
  } else if ((status & 0xFF00) == 0xA700) {
    meaning = "Refused: out of resources";
  } else if (status == 0xA801) {
    meaning = "Refused: move destination unknown";
  } else if ((status & 0xFF00) == 0xA900) {
    meaning = "Error: data set does not match SOP class";
  } else if ((status & 0xF000) == 0xC000) {
    meaning = "Error: cannot understand / unable to process";
  }
  char buf[96];
  std::snprintf(buf, sizeof buf, "0x%04X (%s)", status, meaning);
  return buf;
}

Result<std::string> encode_file(DcmFileFormat& file, E_TransferSyntax xfer) {
  std::string bytes;
  std::vector<char> chunk(1 << 16);
  DcmOutputBufferStream out(chunk.data(), static_cast<offile_off_t>(chunk.size()));
  file.transferInit();
  OFCondition c;
  do {
    c = file.write(out, xfer, EET_ExplicitLength, nullptr);
    void* data = nullptr;
    offile_off_t length = 0;
    out.flushBuffer(data, length);
    bytes.append(static_cast<const char*>(data), static_cast<size_t>(length));
  } while (c == EC_StreamNotifyClient);
  file.transferEnd();
  if (c.bad()) return internal_error(std::string("cannot encode the DICOM file (") + c.text() + ")");
  return bytes;
}

Result<ReceivedInstance> save_instance(DcmDataset& dataset, const std::filesystem::path& out_dir) {
  ReceivedInstance inst;
  OFString v;
  if (dataset.findAndGetOFString(DCM_SOPClassUID, v).good()) inst.sop_class_uid = v.c_str();
  if (dataset.findAndGetOFString(DCM_SOPInstanceUID, v).good()) inst.sop_instance_uid = v.c_str();
  if (dataset.findAndGetOFString(DCM_StudyInstanceUID, v).good()) inst.study_uid = v.c_str();
  if (dataset.findAndGetOFString(DCM_SeriesInstanceUID, v).good()) inst.series_uid = v.c_str();
  if (inst.sop_class_uid.empty() || inst.sop_instance_uid.empty() || inst.study_uid.empty() ||
      inst.series_uid.empty()) {
    return bad_input("received instance lacks SOP Class, SOP Instance, Study or Series Instance UID");
  }
  inst.file = instance_path(out_dir, inst.study_uid, inst.series_uid, inst.sop_instance_uid);
  std::error_code ec;
  std::filesystem::create_directories(inst.file.parent_path(), ec);
  if (ec)
    return internal_error(inst.file.parent_path().string() + ": cannot create directory: " + ec.message());

  E_TransferSyntax xfer = dataset.getOriginalXfer();
  if (xfer == EXS_Unknown) xfer = EXS_LittleEndianExplicit;
  // DcmFileFormat takes ownership of the dataset it is given; give it a shallow
  // wrapper instead: copy-construct is expensive for big pixel data, so we
  // borrow the dataset and release it afterwards.
  DcmFileFormat file(&dataset, OFFalse);
  auto bytes = encode_file(file, xfer);
  file.getAndRemoveDataset();  // hand the dataset back to the caller
  if (!bytes.ok()) return bytes.error().with_context(inst.file.string());
  HILUM_RETURN_IF_ERROR(write_file_atomic(inst.file, *bytes));
  return inst;
}

}  // namespace hilum::pacs::detail
