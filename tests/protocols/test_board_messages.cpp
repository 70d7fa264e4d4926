// Message layer: a golden payload for every request and response, written by hand from
// docs/protocol.md section 4 (not dumped from the encoder), checked both ways; then the
// decoders' refusals (truncation, trailing bytes, bad enums and counts) and the encoders'.
#include <catch2/catch.hpp>
#include <vector>

#include "protocols/board_messages.hpp"

using namespace metaplast::protocols;
using Bytes = std::vector<std::uint8_t>;

namespace {

const Bytes kPrefix = {0x00, 0x44, 0x33, 0x22, 0x11};  // status ok, boot id 0x11223344
const ResponseStatus kOk{Status::kOk, 0x11223344, 0};

Bytes cat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

template <class Request>
void check_golden_request(const Request& value, const Bytes& bytes) {
  CHECK(encode(value) == bytes);
  const auto d = decode<Request>(bytes);
  INFO(d.error);
  REQUIRE(d);
  CHECK(*d.value == value);
  // Every strict prefix is refused, never decoded as something else.
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    const auto t = decode<Request>(std::span(bytes).first(n));
    CHECK_FALSE(t);
    CHECK(t.status != Status::kOk);
  }
  // One byte too many is a length error.
  const auto longer = decode<Request>(cat(bytes, {0x00}));
  CHECK_FALSE(longer);
  CHECK(longer.status == Status::kBadLength);
}

template <class Body>
void check_golden_response(const Body& body, const Bytes& bytes) {
  CHECK(encode_response(kOk, body) == bytes);
  const auto d = decode_response<Body>(bytes);
  INFO(d.error);
  REQUIRE(d);
  CHECK(*d.value == body);
  const auto st = decode_response_status(bytes);
  REQUIRE(st);
  CHECK(*st.value == kOk);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    CHECK_FALSE(decode_response<Body>(std::span(bytes).first(n)));
  }
  CHECK(decode_response<Body>(cat(bytes, {0x00})).status == Status::kBadLength);
}

const Configuration kConfig{200, 2, 1500, 100, 1800, 3000, 200, 3300, 1200, 1000};
const Bytes kConfigBytes = {0xC8, 0x00, 0x02, 0xDC, 0x05, 0x64, 0x00, 0x00, 0x00,
                            0x08, 0x07, 0xB8, 0x0B, 0xC8, 0x00, 0x00, 0x00, 0xE4,
                            0x0C, 0xB0, 0x04, 0xE8, 0x03, 0x00, 0x00};

}  // namespace

TEST_CASE("requests without a payload are empty and refuse any byte") {
  check_golden_request(IdentifyRequest{}, {});
  check_golden_request(GetStatusRequest{}, {});
  check_golden_request(GetConfigurationRequest{}, {});
  check_golden_request(SafeStateRequest{}, {});
  check_golden_request(WatchdogKickRequest{}, {});
}

TEST_CASE("CONFIGURE golden payload") {
  check_golden_request(ConfigureRequest{kConfig}, kConfigBytes);
}

TEST_CASE("FORM golden payload: whole array as one block") {
  FormRequest r;
  r.batch = {0x01020304, 0, 16384};
  r.selection = Selection::array();
  r.expected_boot_id = 0x11223344;
  check_golden_request(r, {0x04, 0x03, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x00,
                           0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x80, 0x00, 0x80, 0x00,  // block
                           0x44, 0x33, 0x22, 0x11});  // expected_boot_id
}

TEST_CASE("SET golden payloads: by level on a cell, explicit on a row") {
  SetRequest by_level;
  by_level.batch = {7, 0, 1};
  by_level.selection = Selection::cell(3, 5);
  by_level.mode = SetMode::kLevel;
  by_level.level = 4;
  by_level.expected_boot_id = 0x11223344;
  check_golden_request(by_level, {0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
                                  0x00, 0x00, 0x00, 0x01, 0x00, 0x85, 0x01, 0x00, 0x04,  // level 4
                                  0x44, 0x33, 0x22, 0x11});

  SetRequest explicit_set;
  explicit_set.batch = {8, 2, 10};
  explicit_set.selection = Selection::row(5);
  explicit_set.mode = SetMode::kExplicit;
  explicit_set.level = 0;
  explicit_set.word_line_mv = 1100;
  explicit_set.bit_line_mv = 1400;
  explicit_set.width_ns = 50;
  explicit_set.expected_boot_id = 0xDEADBEEF;
  check_golden_request(explicit_set,
                       {0x08, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x0A, 0x00, 0x00, 0x00,
                        0x01, 0x05, 0x00, 0x00, 0x00, 0x01, 0x00, 0x80, 0x00, 0x01, 0x4C, 0x04,
                        0x78, 0x05, 0x32, 0x00, 0x00, 0x00, 0xEF, 0xBE, 0xAD, 0xDE});
}

TEST_CASE("RESET golden payload: a list with the first and last cell") {
  ResetRequest r;
  r.batch = {9, 0, 2};
  r.selection = Selection::list({0, 16383});
  r.expected_boot_id = 0x00000001;
  check_golden_request(r, {0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
                           0x00, 0x02, 0x00, 0x00, 0x00, 0xFF, 0x3F, 0x01, 0x00, 0x00, 0x00});
}

TEST_CASE("READ golden payload") {
  ReadRequest r;
  r.selection = Selection::array();
  r.offset = 0;
  r.max_count = 2048;
  check_golden_request(
      r, {0x01, 0x00, 0x00, 0x00, 0x00, 0x80, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x08});
}

TEST_CASE("PROGRAM_VERIFY golden payload") {
  ProgramVerifyRequest r;
  r.batch = {0x10, 0, 2};
  r.options = program_verify_options::kTrace;
  r.entries = {{0x0102, 3, 20, 250}, {0x3FFF, 0, 5, 100}};
  r.expected_boot_id = 0x11223344;
  check_golden_request(r, {0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00,
                           0x00, 0x01, 0x02, 0x00, 0x02, 0x01, 0x03, 0x14, 0xFA, 0x00, 0xFF,
                           0x3F, 0x00, 0x05, 0x64, 0x00, 0x44, 0x33, 0x22, 0x11});
}

TEST_CASE("READ_COUNTERS, BATCH_STATUS and WATCHDOG_ARM golden payloads") {
  ReadCountersRequest rc;
  rc.selection = Selection::block(2, 3, 4, 5);
  rc.offset = 10;
  rc.max_count = 400;
  check_golden_request(
      rc, {0x01, 0x02, 0x00, 0x03, 0x00, 0x04, 0x00, 0x05, 0x00, 0x0A, 0x00, 0x90, 0x01});
  check_golden_request(BatchStatusRequest{0xCAFEBABE}, {0xBE, 0xBA, 0xFE, 0xCA});
  check_golden_request(WatchdogArmRequest{500}, {0xF4, 0x01, 0x00, 0x00});
}

TEST_CASE("IDENTIFY response golden payload") {
  const IdentifyResponse id{.protocol_version = 1,
                            .model = "MB1",
                            .serial = "S7",
                            .firmware_version = "1.0",
                            .rows = 128,
                            .cols = 128,
                            .adc_bits = 14,
                            .dac_bits = 10,
                            .tia_ranges = {{10000, 0.5f, 16}},
                            .levels = {{0, 0, 3.0f}, {10000, 900, 20.0f}},
                            .limits = {100, 300, 3500, 3000, 3300, 15, 1000000, 100, 100, 60000},
                            .boot_id = 0x11223344,
                            .capabilities = 0x3F,
                            .max_payload_bytes = 4160};
  const Bytes body = {0x01, 0x03, 'M',  'B',  '1',  0x02, 'S',  '7',  0x03, '1',  '.',
                      '0',                                                               // strings
                      0x80, 0x00, 0x80, 0x00, 0x0E, 0x0A,                                // geometry
                      0x01, 0x10, 0x27, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3F, 0x10, 0x00,  // TIA
                      0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x40,  // level 0
                      0x10, 0x27, 0x00, 0x00, 0x84, 0x03, 0x00, 0x00, 0xA0, 0x41,        // level 1
                      0x64, 0x00, 0x2C, 0x01, 0xAC, 0x0D, 0xB8, 0x0B, 0xE4, 0x0C,        // limits V
                      0x0F, 0x00, 0x00, 0x00, 0x40, 0x42, 0x0F, 0x00, 0x64,              // widths
                      0x64, 0x00, 0x00, 0x00, 0x60, 0xEA, 0x00, 0x00,                    // watchdog
                      0x44, 0x33, 0x22, 0x11, 0x3F, 0x00, 0x00, 0x00, 0x40, 0x10};       // tail
  check_golden_response(id, cat(kPrefix, body));
}

TEST_CASE(
    "the largest IDENTIFY response fits the smallest max_payload_bytes a board may advertise") {
  IdentifyResponse id;
  id.model = id.serial = id.firmware_version = std::string(kMaxStringBytes, 'x');
  id.tia_ranges.resize(kMaxTiaRanges);
  id.levels.resize(kMaxLevels);
  const auto payload = encode_response(ResponseStatus{}, id);
  CHECK(payload.size() == 390);
  CHECK(payload.size() <= kMinAdvertisedPayloadBytes);
}

TEST_CASE("GET_STATUS, GET_CONFIGURATION and pulse response golden payloads") {
  GetStatusResponse st{board_state::kSafe | board_state::kWatchdogArmed | board_state::kConfigured,
                       0x11223344, 1000, 500};
  check_golden_response(st, cat(kPrefix, {0x0B, 0x44, 0x33, 0x22, 0x11, 0xE8, 0x03, 0x00, 0x00,
                                          0xF4, 0x01, 0x00, 0x00}));
  check_golden_response(kConfig, cat(kPrefix, kConfigBytes));
  check_golden_response(PulseResponse{7, 1}, cat(kPrefix, {0x07, 0x00, 0x00, 0x00, 0x01, 0x00}));
  check_golden_response(EmptyBody{}, kPrefix);
}

TEST_CASE("READ response golden payload") {
  ReadResponse r{2, 0, {0x0100, 0x0FFF}};
  check_golden_response(r, cat(kPrefix, {0x02, 0x00, 0x00, 0x02, 0x00, 0x00, 0x01, 0xFF, 0x0F}));
}

TEST_CASE("PROGRAM_VERIFY response golden payload, with pass bit and trace") {
  ProgramVerifyResponse r;
  r.batch_id = 0x10;
  r.tia_range = 1;
  r.results = {{0x0800, 3, true}, {0x0040, 5, false}};
  r.has_trace = true;
  r.trace = {{1, PulseKind::kReset, 0x0041}};
  check_golden_response(
      r, cat(kPrefix, {0x10, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x08, 0x83, 0x40,
                       0x00, 0x05, 0x01, 0x01, 0x00, 0x01, 0x00, 0x02, 0x41, 0x00}));
}

TEST_CASE("READ_COUNTERS and BATCH_STATUS response golden payloads") {
  ReadCountersResponse rc{10, {{100000, 99999, 1}}};
  check_golden_response(rc, cat(kPrefix, {0x0A, 0x00, 0x01, 0x00, 0xA0, 0x86, 0x01, 0x00, 0x9F,
                                          0x86, 0x01, 0x00, 0x01, 0x00}));
  BatchStatusResponse bs{0xCAFEBABE, BatchState::kInProgress, 640, 1000};
  check_golden_response(bs, cat(kPrefix, {0xBE, 0xBA, 0xFE, 0xCA, 0x01, 0x80, 0x02, 0x00, 0x00,
                                          0xE8, 0x03, 0x00, 0x00}));
}

TEST_CASE("an error response carries status, boot id and detail and no body") {
  const ResponseStatus err{Status::kNotFormed, 0x11223344, 3};
  const Bytes bytes = {0x06, 0x44, 0x33, 0x22, 0x11, 0x03, 0x00, 0x00, 0x00};
  CHECK(encode_error_response(err) == bytes);
  const auto st = decode_response_status(bytes);
  REQUIRE(st);
  CHECK(*st.value == err);
  // Asking for a body reports the board's own status.
  const auto body = decode_response<PulseResponse>(bytes);
  CHECK_FALSE(body);
  CHECK(body.status == Status::kNotFormed);
  CHECK_THROWS_AS(encode_error_response(kOk), std::invalid_argument);
  CHECK_THROWS_AS(encode_response(err, EmptyBody{}), std::invalid_argument);
}

TEST_CASE("response frames carry RESPONSE, ERROR and MORE_FRAGMENTS as documented") {
  // The READ response golden frame of docs/protocol.md (CRCs from Python binascii).
  const Bytes golden = {0xa5, 0x01, 0x05, 0x13, 0x34, 0x12, 0x0e, 0x00, 0x95, 0x06,
                        0x00, 0x44, 0x33, 0x22, 0x11, 0x02, 0x00, 0x00, 0x02, 0x00,
                        0x00, 0x01, 0xff, 0x0f, 0x88, 0x92, 0x80, 0x59};
  const ReadResponse r{2, 0, {0x0100, 0x0FFF}};
  CHECK(encode_response_frame(0x1234, Opcode::kRead, encode_response(kOk, r), true) == golden);
  const auto last = encode_response_frame(0x1234, Opcode::kRead, encode_response(kOk, r), false);
  CHECK(last[2] == frame_flags::kResponse);
  const auto err =
      encode_response_frame(1, Opcode::kSet, encode_error_response({Status::kBusy, 1, 0}));
  CHECK(err[2] == (frame_flags::kResponse | frame_flags::kError));
}

TEST_CASE("SET golden frame of docs/protocol.md") {
  // CRCs from Python binascii (crc_hqx(header, 0xFFFF), crc32), not from the encoder.
  const Bytes golden = {0xa5, 0x01, 0x00, 0x11, 0x02, 0x01, 0x17, 0x00, 0xbf, 0xa9,
                        0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
                        0x00, 0x00, 0x00, 0x01, 0x00, 0x85, 0x01, 0x00, 0x04, 0x44,
                        0x33, 0x22, 0x11, 0x30, 0x0b, 0xf9, 0xa1};
  SetRequest s;
  s.batch = {7, 0, 1};
  s.selection = Selection::cell(3, 5);
  s.level = 4;
  s.expected_boot_id = 0x11223344;
  CHECK(encode_request_frame(0x0102, s) == golden);
}

TEST_CASE("mutating requests end with expected_boot_id; the 1.0 layout without it is refused") {
  // A board answers boot_id_mismatch with the id the request carried as detail.
  const ResponseStatus mismatch{Status::kBootIdMismatch, 0x55667788, 0x11223344};
  const Bytes bytes = {0x0F, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11};
  CHECK(encode_error_response(mismatch) == bytes);
  const auto st = decode_response_status(bytes);
  REQUIRE(st);
  CHECK(*st.value == mismatch);
  CHECK(std::string(to_string(Status::kBootIdMismatch)) == "boot_id_mismatch");

  // Version skew fails loudly both ways: a request in the 1.0 layout (no expected_boot_id) is
  // too short for a 1.1 decoder, and a 1.1 request is 4 bytes too long for a 1.0 decoder (whose
  // layout ends where the 1.1 one starts its last field). Neither is executed on a misreading.
  const Bytes reset_1_0 = {0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00,
                           0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0xFF, 0x3F};
  CHECK(decode<ResetRequest>(reset_1_0).status == Status::kBadLength);
  const Bytes set_1_0 = {0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
                         0x00, 0x00, 0x00, 0x01, 0x00, 0x85, 0x01, 0x00, 0x04};
  CHECK(decode<SetRequest>(set_1_0).status == Status::kBadLength);

  CHECK(carries_expected_boot_id(Opcode::kForm));
  CHECK(carries_expected_boot_id(Opcode::kSet));
  CHECK(carries_expected_boot_id(Opcode::kReset));
  CHECK(carries_expected_boot_id(Opcode::kProgramVerify));
  for (auto op : {Opcode::kIdentify, Opcode::kConfigure, Opcode::kRead, Opcode::kReadCounters,
                  Opcode::kBatchStatus, Opcode::kSafeState, Opcode::kWatchdogArm}) {
    CHECK_FALSE(carries_expected_boot_id(op));
  }
}

TEST_CASE("with_expected_boot_id replaces only the boot id of a mutating request") {
  ProgramVerifyRequest pv;
  pv.batch = {0x10, 0, 2};
  pv.entries = {{0x0102, 3, 20, 250}, {0x3FFF, 0, 5, 100}};
  pv.expected_boot_id = 0x11223344;
  const auto original = encode(pv);
  const auto stamped = with_expected_boot_id(Opcode::kProgramVerify, original, 0xA1B2C3D4);
  REQUIRE(stamped);
  REQUIRE(stamped->size() == original.size());
  CHECK(Bytes(stamped->begin(), stamped->end() - 4) == Bytes(original.begin(), original.end() - 4));
  CHECK(Bytes(stamped->end() - 4, stamped->end()) == Bytes{0xD4, 0xC3, 0xB2, 0xA1});
  // Not a mutating request, or not decodable: nothing to stamp.
  CHECK_FALSE(with_expected_boot_id(Opcode::kRead, encode(ReadRequest{Selection::array(), 0, 1}),
                                    0xA1B2C3D4));
  CHECK_FALSE(with_expected_boot_id(Opcode::kReset, Bytes{0x01, 0x02}, 0xA1B2C3D4));
}

TEST_CASE("decoders refuse bad enums and counts with bad_argument") {
  // Unknown selection kind 2.
  auto d = decode<ReadRequest>(Bytes{0x02, 0x00, 0x00, 0x01, 0x00});
  CHECK(d.status == Status::kBadArgument);
  // Empty cell list.
  d = decode<ReadRequest>(Bytes{0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00});
  CHECK(d.status == Status::kBadArgument);
  // Block with zero rows.
  d = decode<ReadRequest>(
      Bytes{0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00, 0x01, 0x00});
  CHECK(d.status == Status::kBadArgument);
  // max_count 0 and above the limit.
  d = decode<ReadRequest>(
      Bytes{0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00});
  CHECK(d.status == Status::kBadArgument);
  d = decode<ReadRequest>(
      Bytes{0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08});
  CHECK(d.status == Status::kBadArgument);
  // A list claiming more cells than the payload holds is a length error.
  d = decode<ReadRequest>(Bytes{0x00, 0x05, 0x00, 0x01, 0x00, 0x01, 0x00});
  CHECK(d.status == Status::kBadLength);
  // Unknown SET mode.
  Bytes set = {0x07, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0x00, 0x01, 0x00, 0x85, 0x01, 0x02, 0x04};
  CHECK(decode<SetRequest>(set).status == Status::kBadArgument);
  // PROGRAM_VERIFY with zero entries, and with more than 640.
  Bytes pv = {0x10, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0x00, 0x00, 0x00};
  CHECK(decode<ProgramVerifyRequest>(pv).status == Status::kBadArgument);
  pv[13] = 0x81;
  pv[14] = 0x02;  // 641
  CHECK(decode<ProgramVerifyRequest>(pv).status == Status::kBadArgument);
  // Reserved trace_flags bits (found by the fuzzer: they were silently dropped).
  const Bytes pv_resp = cat(kPrefix, {0, 0, 0, 0, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00});
  CHECK(decode_response<ProgramVerifyResponse>(pv_resp).status == Status::kBadArgument);
  // Batch state 3 does not exist.
  const Bytes bs = cat(kPrefix, {0xBE, 0xBA, 0xFE, 0xCA, 0x03, 0, 0, 0, 0, 0, 0, 0, 0});
  CHECK(decode_response<BatchStatusResponse>(bs).status == Status::kBadArgument);
}

TEST_CASE("encoders refuse what the protocol cannot carry") {
  ReadRequest r;
  r.selection = Selection::list(std::vector<std::uint16_t>(kMaxListCells + 1, 0));
  r.max_count = 1;
  CHECK_THROWS_AS(encode(r), std::invalid_argument);
  r.selection = Selection::array();
  r.max_count = 0;
  CHECK_THROWS_AS(encode(r), std::invalid_argument);
  ProgramVerifyRequest pv;
  CHECK_THROWS_AS(encode(pv), std::invalid_argument);  // no entries
  IdentifyResponse id;
  id.tia_ranges = {{1, 1.0f, 0}};
  id.levels = {{}, {}};
  id.model = std::string(33, 'x');
  CHECK_THROWS_AS(encode_response(kOk, id), std::invalid_argument);
}

TEST_CASE("selections enumerate their cells in selection order") {
  const auto block = Selection::block(2, 3, 2, 2);
  REQUIRE(block.size() == 4);
  CHECK(block.cell_at(0) == 2 * 128 + 3);
  CHECK(block.cell_at(1) == 2 * 128 + 4);
  CHECK(block.cell_at(2) == 3 * 128 + 3);
  CHECK(block.cell_at(3) == 3 * 128 + 4);
  CHECK(Selection::array().size() == 16384);
  CHECK(Selection::array().cell_at(16383) == 16383);
  CHECK(Selection::row(127).cell_at(0) == 127 * 128);
  CHECK(Selection::cell(1, 2).cells == std::vector<std::uint16_t>{130});
}

TEST_CASE("a whole-array read fits in 8 frames within 1.5x of the payload minimum") {
  std::size_t wire = 0;
  for (std::uint16_t offset = 0; offset < 16384; offset += kMaxReadCodesPerResponse) {
    ReadRequest req;
    req.selection = Selection::array();
    req.offset = offset;
    req.max_count = kMaxReadCodesPerResponse;
    wire += encode_request_frame(offset, req).size();
    ReadResponse resp{0, offset, std::vector<std::uint16_t>(kMaxReadCodesPerResponse, 0)};
    wire += encode_response_frame(offset, Opcode::kRead, encode_response(kOk, resp), true).size();
  }
  CHECK(wire == 33176);  // docs/protocol.md section 7
  CHECK(static_cast<double>(wire) / (2.0 * 16384) < 1.5);
}

TEST_CASE("a 1000-cell program-and-verify is within 1.5x of the payload minimum") {
  // Two requests (640 + 360 entries) and their responses without trace, as in section 7. The
  // payload minimum is 6 bytes out and 3 back per cell.
  std::size_t wire = 0;
  std::size_t sent = 0;
  for (const std::size_t n : {std::size_t{640}, std::size_t{360}}) {
    ProgramVerifyRequest req;
    req.batch = {1, static_cast<std::uint32_t>(sent), 1000};
    req.entries.assign(n, ProgramVerifyEntry{100, 4, 20, 400});
    req.expected_boot_id = 0x11223344;
    const auto frame = encode_request_frame(1, req);
    if (n == 640) CHECK(frame.size() - kFrameOverheadBytes == 3859);  // section 4.6
    wire += frame.size();
    ProgramVerifyResponse resp;
    resp.batch_id = 1;
    resp.results.assign(n, ProgramVerifyResult{0x0800, 3, true});
    wire += encode_response_frame(1, Opcode::kProgramVerify, encode_response(kOk, resp)).size();
    sent += n;
  }
  CHECK(wire == 9124);  // docs/protocol.md section 7
  CHECK(static_cast<double>(wire) / (9.0 * 1000) < 1.5);
}

TEST_CASE("SET_LEVELS golden payloads: two levels, none (the board's own), and the table back") {
  check_golden_request(
      SetLevelsRequest{{{916, 40.0f}, {1148, 120.0f}}},
      {0x02, 0x94, 0x03, 0x00, 0x00, 0x20, 0x42, 0x7C, 0x04, 0x00, 0x00, 0xF0, 0x42});
  CHECK(encode(SetLevelsRequest{}) == Bytes{0x00});
  REQUIRE(decode<SetLevelsRequest>(Bytes{0x00}));
  CHECK(decode<SetLevelsRequest>(Bytes{0x00}).value->levels.empty());
  // 15 HCS levels at most (16 with the LCS): a 16th is refused both ways.
  CHECK_THROWS(encode(SetLevelsRequest{std::vector<LevelSetting>(kMaxLevels)}));
  Bytes sixteen{static_cast<std::uint8_t>(kMaxLevels)};
  sixteen.resize(1 + 6 * kMaxLevels);
  CHECK(decode<SetLevelsRequest>(sixteen).status == Status::kBadArgument);

  const LevelTable table{{{0, 0, 3.0f}, {20'000, 916, 40.0f}}};
  check_golden_response(
      table, cat(kPrefix, {0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x40,
                           0x20, 0x4E, 0x00, 0x00, 0x94, 0x03, 0x00, 0x00, 0x20, 0x42}));
  CHECK(std::string(to_string(Opcode::kSetLevels)) == "SET_LEVELS");
}
