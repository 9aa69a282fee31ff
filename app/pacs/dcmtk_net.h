// Private to hilum_pacs: the DCMTK pieces the client and the storage SCP share
// (presentation contexts, TLS layers, error translation, atomic instance
// writes). Includes DCMTK; never include it from a public header.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "app/pacs/pacs_client.h"
#include "app/pacs/pacs_config.h"
#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dctk.h"
#include "dcmtk/dcmnet/assoc.h"
#include "dcmtk/dcmtls/tlslayer.h"
#include "model/result.h"

namespace hilum::pacs::detail {

// Silences DCMTK's own logger (its debug output would dump datasets, i.e.
// patient data) and loads nothing else; idempotent.
void init_dcmtk();

// Storage SOP classes Hilum accepts when it receives instances (C-GET
// sub-operations, its storage SCP): CT, MR, PET, SR family, encapsulated PDF,
// secondary capture, key objects, presentation states, segmentations.
const std::vector<std::string>& storage_sop_classes();

// Transfer syntaxes offered/accepted for received instances, preferred first:
// explicit and implicit VR little endian, then the lossless compressed ones the
// DICOM loader decodes (JPEG-LS, JPEG 2000, JPEG lossless, RLE).
OFList<OFString> receive_transfer_syntaxes();
// Explicit then implicit VR little endian.
OFList<OFString> uncompressed_transfer_syntaxes();

// A TLS layer for the requestor (client) or acceptor (SCP) side.
Result<std::unique_ptr<DcmTLSTransportLayer>> make_tls_layer(const Tls& tls, T_ASC_NetworkRole role,
                                                             const std::string& what);

// Turns a failed association request into an error naming the node. For a
// rejected association it asks the PACS again with a plain verification request
// to learn the reason (DcmSCU keeps it private).
Error association_error(const Node& node, const OFCondition& cond, DcmTransportLayer* tls);

// A failure while the association is open (a DIMSE message could not be sent or
// received; a timeout is reported as such).
Error dimse_error(const Node& node, const std::string& operation, const OFCondition& cond,
                  int dimse_timeout_s);

// "0xA700 (Refused: Out of resources)"-style text for a DIMSE status.
std::string status_text(uint16_t status);

// Writes a received instance to out_dir/<study>/<series>/<sop>.dcm atomically,
// in the transfer syntax it arrived in (with a file meta header). Takes no
// ownership of `dataset`.
Result<ReceivedInstance> save_instance(DcmDataset& dataset, const std::filesystem::path& out_dir);

// Serialises a dataset as a DICOM file (preamble, meta header) in `xfer`.
Result<std::string> encode_file(DcmFileFormat& file, E_TransferSyntax xfer);

}  // namespace hilum::pacs::detail
