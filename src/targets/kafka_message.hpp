// A stream record as a Kafka message: its key and headers. Pure C++.
#pragma once

#include <string>

namespace pgs::targets {

struct KafkaMessage;

// A record's key (its Keys as canonical JSON: object keys sorted, no white
// space) and headers eventID, SequenceNumber, eventName. Records as the
// output plugin writes them are read without parsing their images (the
// envelope's layout is fixed: decoder/record_builder.cpp); anything else is
// parsed whole. False when the text is not a stream record.
bool KafkaMessageOf(const std::string& record, KafkaMessage* out);

// The same, always parsing the whole record (the reference for the above).
bool KafkaMessageOfParsed(const std::string& record, KafkaMessage* out);

}  // namespace pgs::targets
