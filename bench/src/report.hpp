// `parley-bench report FILE...`: a table of results. A file holds one run's
// JSON object, an array of them, {"runs": [...]} (bench/run.sh), or one
// object per line.
#pragma once

#include <ostream>

namespace parley::bench {

int print_report(int argc, char** argv, std::ostream& out);

}  // namespace parley::bench
